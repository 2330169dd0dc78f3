# Sourced by gpu_check.sh and threads_check.sh: install the wheels brought to a machine without
# network. Needs PY (the Python), WHL (the folder the wheels came in), SITE (where to install them)
# and JOIN (a scratch folder). XGBoost's full wheel (131 MB) is larger than one command may carry, so
# it may come in parts (xgboost-*.whl.part-NN, in sub-folders, joined here in name order, checked
# against an xgboost*.sha256 when there is one); other wheels come whole. Installs every wheel with
# pip --no-index --no-deps --target "$SITE" and puts SITE first on PYTHONPATH.
[ -d "$WHL" ] && WHL="$(cd "$WHL" && pwd)"
mkdir -p "$JOIN"
if [ -d "$WHL" ]; then
  # parts: group by wheel name, join in part order (parts may sit in different sub-folders)
  mapfile -t PARTS < <(find "$WHL" -type f -name 'xgboost-*.whl.part-*' -printf '%f\t%p\n' | sort | cut -f2)
  if [ "${#PARTS[@]}" -gt 0 ]; then
    name="$(basename "${PARTS[0]}")"
    name="${name%.part-*}"
    echo "== joining ${#PARTS[@]} part(s) into $name"
    cat "${PARTS[@]}" > "$JOIN/$name"
    sums="$(find "$WHL" -type f -name 'xgboost*.sha256' | head -n 1)"
    if [ -n "$sums" ]; then
      (cd "$JOIN" && sha256sum -c "$sums") || { echo "== $name: sha256 mismatch (a part is missing?)"; rm -f "$JOIN/$name"; }
    fi
  fi
  find "$WHL" -type f -name '*.whl' -exec cp {} "$JOIN/" \;
fi
if compgen -G "$JOIN/*.whl" > /dev/null; then
  echo "== installing $(ls "$JOIN"/*.whl | wc -l) wheel(s) into $SITE"
  mkdir -p "$SITE"
  "$PY" -m pip install --quiet --no-index --no-deps --upgrade --target "$SITE" "$JOIN"/*.whl \
    || echo "== pip install of the wheels failed"
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
else
  echo "== no wheels under $WHL"
fi
