"""``python -m gbdt_pwiser``: the ``gbdt-pwiser`` command line."""

import sys

if __name__ == "__main__":
    try:  # the command line's imports take seconds: a Ctrl-C then is one line too
        from .cli import main
    except KeyboardInterrupt:
        print("gbdt-pwiser: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(main())
