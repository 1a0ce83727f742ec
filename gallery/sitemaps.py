"""The sitemap's sections, for ``django.contrib.sitemaps`` (views in gallery/views.py).

"pages" holds the home page, the list, the treatment, location and practitioner pages;
"cases" every public case, ``limit`` to a file. The protocol allows 50,000 URLs a file;
a smaller file is quicker to build on a cache miss and to fetch.
"""

from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from gallery.cache import current_generation
from gallery.filters import CaseFilter
from gallery.listing import page_of
from gallery.models import Case, reference_data


class PagesSitemap(Sitemap):
    def items(self) -> list[str]:
        ref = reference_data()  # cached: no query on a running site
        return [
            reverse("gallery:home"),
            reverse("gallery:list"),
            *(reverse("gallery:treatment", args=[slug]) for slug in sorted(ref["treatments"])),
            *(reverse("gallery:location", args=[slug]) for slug in sorted(ref["locations"])),
            *(
                reverse("gallery:practitioner", args=[slug])
                for slug in sorted(ref["practitioners"])
            ),
        ]

    def location(self, item: str) -> str:
        return item


class ListedCases:
    """The public cases in id order, as the paginator reads them: the count from the facet
    cube, each file's rows picked from the listing by its id index and checked against
    ``Case.objects.public()`` (gallery/listing.py). Iterating over every case, which the
    paginator never does, is not offered."""

    def __init__(self) -> None:
        self._count: int | None = None

    def count(self) -> int:
        if self._count is None:
            listed = CaseFilter(None, queryset=Case.objects.listed())
            self._count, _ = listed.facets(current_generation())
        return self._count

    def __getitem__(self, window: slice):
        start, stop = window.start or 0, window.stop
        return page_of(Case.objects.listed(), ("pk",), start, stop - start).only(
            "public_id", "updated_at"
        )


class CasesSitemap(Sitemap):
    limit = 10_000

    def __init__(self) -> None:
        # One per request: the paginator is made afresh on every use, the count once.
        self._cases = ListedCases()

    def items(self) -> ListedCases:
        return self._cases

    def lastmod(self, case: Case):
        return case.updated_at

    def get_latest_lastmod(self) -> None:
        # The index would otherwise read every case for its newest date.
        return None


def sitemaps() -> dict[str, Sitemap]:
    """The sections, made for one request."""
    return {"pages": PagesSitemap(), "cases": CasesSitemap()}
