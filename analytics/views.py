import csv
from datetime import date, timedelta

from django import forms
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from analytics import booking, report
from analytics.counters import FILTER_EVENT, flush, record
from analytics.events import is_bot, public_id, used_filters
from clinic.access import staff_required

# A beacon is a kind, a case id or a list's query string: a few hundred bytes at most.
MAX_BEACON_BYTES = 2048


def _status(code: int, message: str = "") -> HttpResponse:
    return HttpResponse(message, status=code, content_type="text/plain; charset=utf-8")


# Exempt from CSRF: a beacon carries no cookie and no token (the site sets no cookie on
# public pages). It can only add one to a count of a public case or a valid filter choice.
@csrf_exempt
@require_POST
def event(request: HttpRequest) -> HttpResponse:
    """``navigator.sendBeacon`` from the case and list pages: ``k=view|compare&c=<id>`` or
    ``k=filter&q=<the list's query string>``. 204 when understood, counted or not."""
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return _status(400, "Bad Content-Length.")
    if length > MAX_BEACON_BYTES:
        return _status(413, "Too large.")
    # Browsers say where a request comes from; a page elsewhere does not count here.
    if request.headers.get("Sec-Fetch-Site", "same-origin") != "same-origin":
        return _status(403, "Only this site's pages report.")
    data = request.body.decode("utf-8", "replace")
    params = QueryDict(data)
    kind = params.get("k")
    if kind in ("view", "compare"):
        from gallery.models import Case

        case_id = public_id(params.get("c"))
        if case_id is None or not Case.objects.public().filter(public_id=case_id).exists():
            return _status(400, "No public case with this id.")
        if not is_bot(request):
            record(kind, case_id)
    elif kind == FILTER_EVENT:
        if not is_bot(request):
            for name, value in used_filters(params.get("q", "")):
                record(FILTER_EVENT, f"{name}={value}")
    else:
        return _status(400, "Unknown kind: view, compare or filter.")
    return HttpResponse(status=204)


@require_safe
def book(request: HttpRequest) -> HttpResponse:
    """The consultation button of a case: counted, then on to the booking page with the
    case's id. Without a public case, on to the booking page alone (never an error: the
    visitor wants to book)."""
    from gallery.models import Case

    case_id = public_id(request.GET.get("case"))
    public = Case.objects.public().select_related("location")  # its booking page
    case = public.filter(public_id=case_id).first() if case_id else None
    if case is not None and request.method == "GET" and not is_bot(request):
        record("book", case.public_id)
    response = HttpResponseRedirect(booking.target(case))
    response["Cache-Control"] = "no-store"  # every click must reach the counter
    return response


class PeriodForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError("The period must start before it ends.")
            if (end - start).days > 731:
                raise forms.ValidationError("Choose a period of two years at most.")
        return data


DEFAULT_DAYS = 30
PRESETS = (7, 30, 90, 365)


def _period(request: HttpRequest) -> tuple[PeriodForm, date, date]:
    today = timezone.localdate()
    default = (today - timedelta(days=DEFAULT_DAYS - 1), today)
    if "start" in request.GET or "end" in request.GET:
        form = PeriodForm(request.GET)
        if form.is_valid():
            return form, form.cleaned_data["start"], form.cleaned_data["end"]
        return form, *default
    return PeriodForm(initial={"start": default[0], "end": default[1]}), *default


@staff_required("analytics.view_report")
def report_page(request: HttpRequest) -> HttpResponse:
    flush()  # the minutes cron has not added yet
    form, start, end = _period(request)
    today = timezone.localdate()
    groups = report.breakdowns(start, end)
    for group in groups:
        group["chart"] = report.bar_chart(group["rows"])
    top = report.top_cases(start, end)
    return render(
        request,
        "analytics/report.html",
        {
            "form": form,
            "start": start,
            "end": end,
            "presets": [
                {"days": n, "start": today - timedelta(days=n - 1), "end": today} for n in PRESETS
            ],
            "totals": report.totals(start, end),
            "top": top,
            "top_chart": report.bar_chart(
                [report.Row(r.public_id, r.views, r.comparisons, r.bookings) for r in top]
            ),
            "groups": groups,
            "filters": report.filter_usage(start, end),
        },
    )


@staff_required("analytics.view_report")
def report_csv(request: HttpRequest) -> HttpResponse:
    """The period's daily counts, one row per case and day, with the facts recorded."""
    flush()
    _, start, end = _period(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(
        True, f"case-counts-{start}-{end}.csv"
    )
    writer = csv.writer(response)
    columns = ["date", "public_id", *(d for d, _ in report.DIMENSIONS)]
    writer.writerow([*columns, "views", "comparisons", "consultation_clicks"])
    for row in report.period_counts(start, end).order_by("date", "public_id"):
        facts = [_cell(getattr(row, c)) for c in columns]
        writer.writerow([*facts, row.views, row.comparisons, row.bookings])
    return response


def _cell(value) -> str:
    """A CSV cell a spreadsheet shows as text: no formula from a practitioner's name."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
