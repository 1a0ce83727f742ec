"""What the public site reports: validated events, bots left out."""

import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.http import HttpRequest, QueryDict

# Common tokens of crawlers, link previewers, uptime checks, scripts and headless browsers
# (Lighthouse and test runs included). A short pattern rather than a maintained list of
# hundreds: the page view and comparison counts come from the page's script, which most
# bots never run, and the booking redirect is nofollow and disallowed in robots.txt, so this
# only has to catch what runs scripts or follows links anyway.
BOT = re.compile(
    r"bot|crawl|spider|slurp|archiv|preview|facebookexternalhit|embedly|headless|lighthouse"
    r"|pingdom|uptime|monitor|curl|wget|python|httpx|go-http-client|java/|okhttp|libwww"
    r"|scrapy|phantomjs|selenium|puppeteer|playwright",
    re.IGNORECASE,
)
PUBLIC_ID = re.compile(r"[A-Za-z0-9]{1,12}")
# Sorting and paging are not filters; everything else on the list's form is.
NOT_FILTERS = {"sort", "page"}
MAX_FILTER_VALUES = 30


def is_bot(request: HttpRequest) -> bool:
    agent = request.headers.get("User-Agent", "")
    return not agent or bool(BOT.search(agent))


def public_id(raw: str | None) -> str | None:
    return raw if raw and PUBLIC_ID.fullmatch(raw) else None


def used_filters(query: str) -> list[tuple[str, str]]:
    """The valid filter choices in a list page's query string, as (name, value) pairs.
    Invalid values and unknown parameters are left out: only the list's own choices can
    become a row of the report."""
    from gallery.filters import CaseFilter
    from gallery.models import Case

    data = QueryDict(query)
    form = CaseFilter(data, queryset=Case.objects.none()).form
    pairs = []
    for name, field in form.fields.items():
        if name in NOT_FILTERS or name not in data:
            continue
        try:
            value = field.clean(field.widget.value_from_datadict(data, {}, form.add_prefix(name)))
        except ValidationError:
            continue
        values = value if isinstance(value, list) else [value]
        pairs += [(name, _text(v)) for v in values if v not in (None, "")]
    return sorted(set(pairs))[:MAX_FILTER_VALUES]


def _text(value) -> str:
    # 1.5 and 1.50 are one choice.
    return format(value.normalize(), "f") if isinstance(value, Decimal) else str(value)
