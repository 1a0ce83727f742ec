"""What the list page shows around its cases, built from the same facet counts as the
API's ``facets``: the filter panel (every option, with its count), the active-filter chips,
the nearest matches when nothing matches, and the page links.

No database access here: everything is derived from the choices (``CaseFilter.chosen()``)
and the facet counts the page already has, so the list keeps its query budget.
"""

from urllib.parse import urlencode

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from gallery.filters import FACET_DIMS, RANGE_FILTERS
from gallery.models import (
    FITZPATRICK_CHOICES,
    FITZPATRICK_INFO,
    Case,
    reference_data,
    vocabulary,
)

# The panel's order: what a patient decides first comes first.
GROUPS = [
    ("treatment", _("Treatment")),
    ("concern", _("Concern")),
    ("fitzpatrick", _("Fitzpatrick skin type")),
    ("skin_type", _("Skin type")),
    ("area", _("Body area")),
    ("location", _("Location")),
    ("practitioner", _("Practitioner")),
]
PARAM_ORDER = [name for name, _ in GROUPS] + list(RANGE_FILTERS) + ["sort"]
RANGE_LABELS = {
    "depth_min": _("Needle from %(value)s mm"),
    "depth_max": _("Needle up to %(value)s mm"),
    "sessions_min": _("From %(value)s sessions"),
    "sessions_max": _("Up to %(value)s sessions"),
}
MAX_SUGGESTIONS = 5
# Groups that grow with the clinic group (50 locations, 200 practitioners).
LONG_GROUPS = ("location", "practitioner")


def option_labels() -> dict[str, list[tuple[str, str]]]:
    """Every option's label, in the page's language (the treatments' and concerns' names
    are the clinic's own words, as entered)."""
    ref = reference_data()
    return {
        "treatment": sorted(vocabulary(ref["treatments"]).items(), key=lambda kv: kv[1]),
        "concern": sorted(vocabulary(ref["concerns"]).items(), key=lambda kv: kv[1]),
        "fitzpatrick": [(str(n), str(label)) for n, label in FITZPATRICK_CHOICES],
        "skin_type": [(value, str(label)) for value, label in Case.SkinType.choices],
        "area": [(value, str(label)) for value, label in Case.BodyArea.choices],
        "location": sorted(ref["locations"].items(), key=lambda kv: kv[1]),
        "practitioner": sorted(ref["practitioners"].items(), key=lambda kv: kv[1]),
    }


def query_string(chosen: dict[str, list[str]]) -> str:
    """``?…`` for these choices in the form's order (no page: a new choice starts at 1)."""
    pairs = [(name, value) for name in PARAM_ORDER for value in chosen.get(name, [])]
    return "?" + urlencode(pairs) if pairs else "?"


def _with(chosen: dict, name: str, values: list[str]) -> dict:
    changed = {**chosen, name: values}
    return {k: v for k, v in changed.items() if v}


def filter_groups(chosen: dict[str, list[str]], facets: dict[str, dict[str, int]]) -> list[dict]:
    """The panel's checkbox groups. Every option is shown with its count under the other
    choices; one that would give no case is disabled (unless chosen, so it can be
    unticked) and links to the list with it added, where the nearest matches are."""
    labels = option_labels()
    groups = []
    for name, title in GROUPS:
        picked = chosen.get(name, [])
        options = []
        for value, label in labels[name]:
            count = facets.get(name, {}).get(value, 0)
            checked = value in picked
            option = {
                "value": value,
                "label": label,
                "count": count,
                "checked": checked,
                "disabled": not checked and count == 0,
            }
            if option["disabled"] and name in LONG_GROUPS:
                continue  # a group of many clinics or people lists only those with cases
            if option["disabled"]:
                option["url"] = query_string(_with(chosen, name, [*picked, value]))
            if name == "fitzpatrick":
                option["description"] = FITZPATRICK_INFO[int(value)][0]
            options.append(option)
        if name in LONG_GROUPS and len(options) < 2 and not picked:
            continue  # one clinic, or one practitioner: nothing to choose
        groups.append({"name": name, "title": title, "options": options, "chosen": len(picked)})
    return groups


def active_chips(chosen: dict[str, list[str]]) -> list[dict]:
    """One chip per active choice, each linking to the list without it."""
    labels = {name: dict(options) for name, options in option_labels().items()}
    chips = []
    for name in PARAM_ORDER:
        for value in chosen.get(name, []):
            if name == "sort":
                continue
            if name in RANGE_LABELS:
                label = RANGE_LABELS[name] % {"value": value}
            else:
                label = labels[name].get(value, value)
            rest = [v for v in chosen[name] if v != value]
            chips.append({"label": label, "url": query_string(_with(chosen, name, rest))})
    return chips


def describe(chosen: dict[str, list[str]]) -> str:
    """A choice of filters in words: "Type IV with acne scars, oily skin"."""
    labels = {name: dict(options) for name, options in option_labels().items()}

    def names(dim: str) -> str:
        return gettext(" or ").join(labels[dim].get(v, v) for v in chosen.get(dim, []))

    def lower(text: str) -> str:
        return text[:1].lower() + text[1:]

    words = ""
    if chosen.get("fitzpatrick"):
        words = names("fitzpatrick")
    if chosen.get("concern"):
        words = (
            gettext("%(types)s with %(concerns)s")
            % {"types": words, "concerns": lower(names("concern"))}
            if words
            else names("concern")
        )
    extra = []
    if chosen.get("treatment"):
        extra.append(lower(names("treatment")))
    if chosen.get("skin_type"):
        extra.append(gettext("%(skin_type)s skin") % {"skin_type": lower(names("skin_type"))})
    if chosen.get("area"):
        extra.append(lower(names("area")))
    if chosen.get("location"):
        extra.append(gettext("at %(location)s") % {"location": names("location")})
    if chosen.get("practitioner"):
        extra.append(gettext("treated by %(name)s") % {"name": names("practitioner")})
    text = ", ".join(filter(None, [words, *extra])) or gettext("Every case")
    return text[:1].upper() + text[1:]


def nearest_matches(chosen: dict[str, list[str]], facets: dict[str, dict[str, int]]) -> list[dict]:
    """For a choice with no case: the same choice at the nearest Fitzpatrick types that have
    cases, then with one other option in place of a chosen one, then without one choice.

    Each count is already in the facets: an option's count is the number of cases it would
    give with the *other* choices unchanged, which is exactly "this choice, with that
    option instead"."""
    found: list[dict] = []
    seen: set[str] = set()

    def offer(choice: dict, count: int) -> None:
        url = query_string(choice)
        if count and url not in seen and url != query_string(chosen):
            seen.add(url)
            found.append({"label": describe(choice), "count": count, "url": url})

    fitz_counts = facets.get("fitzpatrick", {})
    picked = sorted(int(v) for v in chosen.get("fitzpatrick", []))
    if picked:
        # The nearest type with cases on each side: a type darker, a type lighter.
        for start, step in ((picked[0] - 1, -1), (picked[-1] + 1, 1)):
            n = start
            while 1 <= n <= 6 and not fitz_counts.get(str(n)):
                n += step
            if 1 <= n <= 6:
                offer(_with(chosen, "fitzpatrick", [str(n)]), fitz_counts[str(n)])
    for dim in ("concern", "treatment", "skin_type", "area", "location", "practitioner"):
        if not chosen.get(dim):
            continue
        counts = facets.get(dim, {})
        for value in sorted(counts, key=lambda v: -counts[v]):
            if value not in chosen[dim]:
                offer(_with(chosen, dim, [value]), counts[value])
    # Without one choice. Exact for single-valued facts (every case has one type, one
    # treatment…); a case with two concerns would be counted twice, so not for concerns.
    for dim in ("fitzpatrick", "treatment", "skin_type", "area", "location", "practitioner"):
        if chosen.get(dim) and len([d for d in FACET_DIMS if chosen.get(d)]) > 1:
            offer(_with(chosen, dim, []), sum(facets.get(dim, {}).values()))
    return found[:MAX_SUGGESTIONS]


def page_links(number: int, pages: int, link) -> list[dict | None]:
    """Page numbers to show: the first, the last and two either side of the current one;
    None where pages are left out."""
    shown = sorted({1, pages, *range(max(1, number - 2), min(pages, number + 2) + 1)})
    links: list[dict | None] = []
    for i, n in enumerate(shown):
        if i and n - shown[i - 1] > 1:
            links.append(None)
        links.append({"number": n, "url": link(n), "current": n == number})
    return links
