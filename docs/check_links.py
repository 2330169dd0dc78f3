"""Check every internal link of the built documentation: the file exists, and so does the anchor.

Sphinx's ``linkcheck`` needs the internet; this reads the HTML that ``make docs`` wrote
and checks only what points inside the site (``href``/``src`` without a scheme):
a missing page, image, stylesheet or script, or a ``#fragment`` with no element of
that ``id`` on its page, is reported with the page that links to it. Links to
other sites are counted, not followed.

    python docs/check_links.py docs/_build/html      # exit status 1 when a link is broken
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

_LINK_ATTRS = {"a": "href", "link": "href", "img": "src", "script": "src", "iframe": "src", "source": "src"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name"):
            if values.get(key):
                self.ids.add(values[key])  # type: ignore[arg-type]
        target = values.get(_LINK_ATTRS.get(tag, ""))
        if target is not None:
            self.links.append(target)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def broken_links(site: Path) -> tuple[list[str], int, int]:
    """``(problems, internal links checked, external links seen)`` for the HTML pages under ``site``."""
    site = site.resolve()
    pages = {
        p.resolve(): _parse(p) for p in sorted(site.rglob("*.html")) if "_static" not in p.relative_to(site).parts
    }  # the theme's templates there are not pages
    problems, internal, external = [], 0, 0
    for page_path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("//"):
                external += 1
                continue
            internal += 1
            where = f"{page_path.relative_to(site)}: {link}"
            target = (page_path.parent / unquote(parts.path)).resolve() if parts.path else page_path
            if parts.path.endswith("/") or target.is_dir():
                target = target / "index.html"
            if site not in target.parents and target != site:
                problems.append(f"{where} (outside the site)")
            elif not target.exists():
                problems.append(f"{where} (no file {target.relative_to(site)})")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{where} (no id {parts.fragment!r} in {target.relative_to(site)})")
    return problems, internal, external


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    site = Path(args[0] if args else "docs/_build/html")
    if not (site / "index.html").exists():
        print(f"check_links: no built site in {site} (run make docs)", file=sys.stderr)
        return 2
    problems, internal, external = broken_links(site)
    for p in problems:
        print(f"broken link: {p}", file=sys.stderr)
    print(
        f"check_links: {internal} internal links checked, {len(problems)} broken; "
        f"{external} links to other sites not followed"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
