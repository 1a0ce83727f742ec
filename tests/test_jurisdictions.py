"""The rules of each country join the publication rule (gallery/jurisdictions.py)."""

import dataclasses
import itertools
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from gallery import jurisdictions
from gallery.cache import new_generation
from gallery.listing import sync_listing
from gallery.models import Case, Treatment
from tests.conftest import (
    make_case,
    make_consent,
    make_listed_case,
    make_location,
    make_patient,
    make_photo_row,
    make_practitioner,
    make_user,
)

AU_WARNING = jurisdictions.rules_for("AU").warning

# One country of each rule set.
COUNTRIES = ["US", "GB", "DE", "AU"]
# The base rule, by one way it holds and one way each condition fails (the full table
# of the base rule is tests/test_publication_rule.py).
BASE = ["ok", "draft", "expired", "minor", "not_identifiable", "no_pair"]
# A treatment anyone may advertise, and one involving a prescription-only medicine.
TREATMENTS = ["plain", "prescription_only"]
# Where a prescription-only medicine may not be advertised.
NO_PRESCRIPTION_ADS = {"GB", "DE", "AU"}

TABLE = list(itertools.product(COUNTRIES, BASE, TREATMENTS))


def prescription_treatment() -> Treatment:
    treatment, _ = Treatment.objects.get_or_create(
        slug="microneedling-botulinum",
        defaults={"name": "Microneedling with botulinum toxin", "prescription_only": True},
    )
    return treatment


def build(country, base, treatment_kind, reviewer) -> Case:
    now = timezone.now()
    location = make_location(f"clinic-{country.lower()}", country=country)
    practitioner = make_practitioner(f"dr-{country.lower()}", locations=[location])
    patient = make_patient()
    consent_kw = {
        "patient_is_adult": base != "minor",
        "identifiable": base != "not_identifiable",
    }
    if base == "expired":
        consent_kw |= {"signed_at": now - timedelta(days=400), "expires_at": now - timedelta(1)}
    published = base != "draft"
    case = make_case(
        patient=patient,
        consent=make_consent(patient, **consent_kw),
        photos=False,
        listed=False,
        location=location,
        practitioner=practitioner,
        treatment=(
            prescription_treatment()
            if treatment_kind == "prescription_only"
            else Treatment.objects.get(slug="microneedling")
        ),
        status="published" if published else "draft",
        reviewed_by=reviewer if published else None,
        published_at=now - timedelta(days=1) if published else None,
    )
    make_photo_row(case, "before")
    if base != "no_pair":
        make_photo_row(case, "after")
    return case


def expected(country, base, treatment_kind) -> bool:
    forbidden = treatment_kind == "prescription_only" and country in NO_PRESCRIPTION_ADS
    return base == "ok" and not forbidden


@pytest.mark.django_db
def test_rule_by_country_table():
    reviewer = make_user()
    built = {combo: build(*combo, reviewer) for combo in TABLE}
    # The listing of every case is brought in step once, as sync_publication does.
    sync_listing()
    new_generation()
    public_ids = set(Case.objects.public().values_list("pk", flat=True))
    listed_ids = set(Case.objects.listed().values_list("pk", flat=True))
    cases = {
        c.pk: c
        for c in Case.objects.select_related("consent", "location", "treatment").prefetch_related(
            "photos"
        )
    }
    mismatches = []
    for combo, case in built.items():
        fresh = cases[case.pk]
        in_rule = case.pk in public_ids
        if not (in_rule == fresh.is_public == (case.pk in listed_ids) == expected(*combo)):
            mismatches.append((combo, in_rule, fresh.is_public, fresh.publication_problems()))
    assert not mismatches, mismatches[:10]
    # Both outcomes, and the jurisdiction dimension alone, are exercised: the plain
    # treatment is public in every country, the prescription-only one only in the US.
    assert sorted(
        (c, t) for (c, b, t) in TABLE if b == "ok" and built[(c, b, t)].pk in public_ids
    ) == [(c, "plain") for c in sorted(COUNTRIES)] + [("US", "prescription_only")]
    # The refusal is named, once, with the country.
    uk = cases[built[("GB", "ok", "prescription_only")].pk]
    assert uk.publication_problems() == [
        "Not advertisable in the United Kingdom: microneedling with botulinum toxin — it "
        "involves a prescription-only medicine, which may not be advertised to the public "
        "(Human Medicines Regulations 2012, regulation 284; CAP Code rule 12.12)."
    ]


@pytest.mark.django_db
def test_a_location_moving_country_takes_its_forbidden_cases_down(
    django_capture_on_commit_callbacks,
):
    location = make_location("moving", country="US")
    case = make_listed_case(
        location=location,
        practitioner=make_practitioner("dr-moving", locations=[location]),
        treatment=prescription_treatment(),
    )
    assert case.is_public and Case.objects.listed().filter(pk=case.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        location.country = "AU"
        location.save()
    assert not Case.objects.public().filter(pk=case.pk).exists()
    assert not Case.objects.listed().filter(pk=case.pk).exists()
    # And the treatment's own flag: cleared, the case is public again in Australia.
    with django_capture_on_commit_callbacks(execute=True):
        Treatment.objects.filter(pk=case.treatment_id).update(prescription_only=False)
        treatment = Treatment.objects.get(pk=case.treatment_id)
        treatment.save()
    assert Case.objects.listed().filter(pk=case.pk).exists()


@pytest.mark.django_db
def test_a_treatment_listed_as_not_advertisable_is_refused_with_its_reason(monkeypatch):
    uk = jurisdictions.rules_for("GB")
    stricter = dataclasses.replace(
        uk, not_advertisable={"rf-microneedling": "a test reason (Test Act 2026, s. 1)"}
    )
    monkeypatch.setattr(
        jurisdictions,
        "RULE_SETS",
        tuple(stricter if r is uk else r for r in jurisdictions.RULE_SETS),
    )
    location = make_location("london", country="GB")
    case = make_case(
        location=location,
        practitioner=make_practitioner("dr-london", locations=[location]),
        treatment=Treatment.objects.get(slug="rf-microneedling"),
    )
    assert not Case.objects.public().filter(pk=case.pk).exists()
    assert case.publication_problems() == [
        "Not advertisable in the United Kingdom: microneedling with radiofrequency — a test "
        "reason "
        "(Test Act 2026, s. 1)."
    ]


@pytest.mark.django_db
def test_a_minimum_interval_override_is_checked_at_submit(monkeypatch):
    from gallery.comparability import interval_problems

    au = jurisdictions.rules_for("AU")
    monkeypatch.setattr(
        jurisdictions,
        "RULE_SETS",
        tuple(
            dataclasses.replace(r, min_weeks_after={"microneedling": 26}) if r is au else r
            for r in jurisdictions.RULE_SETS
        ),
    )
    sydney = make_location("sydney", country="AU")
    au_case = make_case(
        location=sydney,
        practitioner=make_practitioner("dr-sydney", locations=[sydney]),
        weeks_after_last_session=12,
    )
    us_case = make_case(weeks_after_last_session=12)
    assert interval_problems(us_case) == []
    assert interval_problems(au_case) == [
        "The after photo is 12 weeks after the last session; Microneedling results are "
        "judged at 26 weeks or later."
    ]


def test_rule_sets_the_rule_cannot_enforce_are_refused():
    us = jurisdictions.rules_for("US")
    with pytest.raises(ImproperlyConfigured, match="minimum age above 18"):
        jurisdictions.check_rules([dataclasses.replace(us, minimum_age=21)])
    with pytest.raises(ImproperlyConfigured, match="cannot relax it"):
        jurisdictions.check_rules([dataclasses.replace(us, identifiable_needs_scope=False)])
    with pytest.raises(ImproperlyConfigured, match="No rule set for"):
        jurisdictions.check_rules([us])
    jurisdictions.check_rules()
    # Every country a location can choose has a rule set, each EU state the EU's.
    assert jurisdictions.rules_for("IE").code == "EU"
    assert {r.code for r in jurisdictions.RULE_SETS} == {"US", "UK", "EU", "AU"}


@pytest.mark.django_db
def test_au_cases_carry_the_warning_on_page_card_and_api(client):
    assert AU_WARNING.startswith("Any invasive procedure carries risks.")
    sydney = make_location("sydney", country="AU")
    au_case = make_listed_case(
        location=sydney, practitioner=make_practitioner("dr-sydney", locations=[sydney])
    )
    us_case = make_listed_case()

    page = client.get(au_case.get_absolute_url()).content.decode()
    comparison = page.split('<section class="comparison', 1)[1].split("</section>", 1)[0]
    assert AU_WARNING in comparison  # under the photos themselves
    disclosure = page.split('<p class="disclosure">', 1)[1].split("</p>", 1)[0]
    assert disclosure.endswith(AU_WARNING)

    cards = client.get("/gallery/").content.decode().split('<article class="card')[1:]
    by_case = {c.split('href="', 1)[1].split('"', 1)[0]: c for c in cards}
    assert AU_WARNING in by_case[au_case.get_absolute_url()]
    assert AU_WARNING not in by_case[us_case.get_absolute_url()]
    assert 'class="outcome-warning"' not in by_case[us_case.get_absolute_url()]

    api = client.get(f"/api/cases/{au_case.public_id}/").json()
    assert api["warning"] == AU_WARNING and api["disclosure"].endswith(AU_WARNING)
    listed = {c["id"]: c for c in client.get("/api/cases/").json()["results"]}
    assert listed[au_case.public_id]["warning"] == AU_WARNING
    assert listed[us_case.public_id]["warning"] == ""
    assert AU_WARNING not in listed[us_case.public_id]["disclosure"]


@pytest.mark.django_db
def test_a_uk_location_refuses_to_publish_a_prescription_only_treatment(client):
    from tests.conftest import sessions_form_data, skin_jpeg, weeks_ago
    from tests.test_staff_workflow import create_case, upload

    london = make_location("london", country="GB")
    practitioner = make_practitioner("dr-london", locations=[london])
    patient = make_patient()
    client.force_login(make_user(groups=["Photographers"]))
    case = create_case(
        client,
        patient,
        make_consent(patient),
        location=london.pk,
        practitioner=practitioner.pk,
        treatment=prescription_treatment().pk,
        # Not RF microneedling: sessions without RF energy.
        **sessions_form_data(
            [(weeks_ago(12 + 6 * n), "Pen", [("cheeks", "1.5", None, None)]) for n in (2, 1, 0)]
        ),
    )
    upload(client, case, skin_jpeg(4, 4, "before", (600, 400)), "b.jpg", "before")
    upload(client, case, skin_jpeg(4, 4, "after", (600, 400)), "a.jpg", "after")
    client.post(f"/staff/cases/{case.pk}/submit/")
    client.force_login(make_user(groups=["Reviewers"]))
    html = client.post(f"/staff/cases/{case.pk}/publish/", follow=True).content.decode()
    assert "Not published" in html
    assert "Not advertisable in the United Kingdom: microneedling with botulinum toxin" in html
    assert "Human Medicines Regulations 2012, regulation 284" in html
    case.refresh_from_db()
    assert case.status == "review" and case.reviewed_by is None and case.listed_until is None
