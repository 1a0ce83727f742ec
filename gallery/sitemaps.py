"""The sitemap's sections, for ``django.contrib.sitemaps`` (views in gallery/views.py).

"pages" holds the home page, the list, the treatment, location and practitioner pages;
"cases" every public case, ``limit`` to a file. The protocol allows 50,000 URLs a file; a
smaller file is quicker to build on a cache miss and to fetch.

Every page is listed once per language (settings.LANGUAGES), each entry naming the others
as ``hreflang`` alternates and English as ``x-default``.
"""

import math

from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from gallery.cache import current_generation
from gallery.filters import CaseFilter
from gallery.listing import page_of
from gallery.models import Case, reference_data


class PagesSitemap(Sitemap):
    i18n = True
    alternates = True
    x_default = True

    def items(self) -> list[tuple[str, tuple[str, ...]]]:
        treatments = reference_data()["treatments"]  # cached: no query on a running site
        return [
            ("gallery:home", ()),
            ("gallery:list", ()),
            *(("gallery:treatment", (slug,)) for slug in sorted(treatments)),
            *(("gallery:location", (slug,)) for slug in sorted(reference_data()["locations"])),
            *(
                ("gallery:practitioner", (slug,))
                for slug in sorted(reference_data()["practitioners"])
            ),
        ]

    def location(self, item: tuple[str, tuple[str, ...]]) -> str:
        name, args = item
        return reverse(name, args=args)  # in the language being listed


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


class InEveryLanguage:
    """``(case, language)`` for every listed case and language, as the paginator reads
    them (Django's i18n sitemap would build the whole list first): a window reads only the
    cases it covers."""

    def __init__(self, cases: ListedCases, languages: list[str]) -> None:
        self.cases = cases
        self.languages = languages

    def count(self) -> int:
        return self.cases.count() * len(self.languages)

    def __getitem__(self, window: slice):
        n = len(self.languages)
        start, stop = window.start or 0, window.stop
        first = start // n
        cases = list(self.cases[slice(first, math.ceil(stop / n))])
        pairs = [(case, language) for case in cases for language in self.languages]
        return pairs[start - first * n : stop - first * n]


class CasesSitemap(Sitemap):
    limit = 10_000
    i18n = True
    alternates = True
    x_default = True

    def __init__(self) -> None:
        # One per request: the paginator is made afresh on every use, the count once.
        self._cases = ListedCases()

    def items(self) -> ListedCases:
        return self._cases

    def _items(self) -> InEveryLanguage:
        return InEveryLanguage(self._cases, self._languages())

    def lastmod(self, case: Case):
        return case.updated_at

    def get_latest_lastmod(self) -> None:
        # The index would otherwise read every case for its newest date.
        return None


def sitemaps() -> dict[str, Sitemap]:
    """The sections, made for one request."""
    return {"pages": PagesSitemap(), "cases": CasesSitemap()}
