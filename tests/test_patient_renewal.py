"""The patient narrows and renews their consent from their private link.

Either records a new consent that supersedes the one in force in its transaction; the
cases follow the new scope on the very next request of every public surface (pages, API,
sitemap, image files, cached pages), and every step is in the audit trail with the
patient's channel."""

import base64
import io
import re
from datetime import timedelta

import pytest
from django.test import Client
from PIL import Image, ImageDraw

from consent.forms import same_name
from consent.models import (
    Consent,
    ConsentEvent,
    ConsentForm,
    ConsentStandingChanged,
    record_consent,
)
from gallery.models import Case
from gallery.publication import sync_publication
from tests.conftest import (
    fetch,
    make_case,
    make_consent,
    make_patient,
    make_public_case,
    make_user,
    now,
    stored_files,
)
from tests.test_side_doors import assert_surfaces_agree, image_urls, patient_link, warm

pytestmark = pytest.mark.django_db


def signature() -> str:
    """What the signature pad sends: a PNG data URL with a stroke on it."""
    im = Image.new("RGBA", (600, 360), (0, 0, 0, 0))
    ImageDraw.Draw(im).line([(30, 200), (200, 80), (400, 260)], fill=(17, 17, 17, 255), width=4)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def wide_consent(patient, **kw) -> Consent:
    return make_consent(
        patient, allow_website=True, allow_social=True, allow_print=True, identifiable=True, **kw
    )


def expired_consent(patient, **kw) -> Consent:
    t = now()
    return make_consent(
        patient, signed_at=t - timedelta(days=400), expires_at=t - timedelta(days=1), **kw
    )


def test_narrowing_takes_the_case_it_excludes_off_every_public_surface_at_once(
    django_capture_on_commit_callbacks,
):
    patient = make_patient(full_name="Zoë Anne-Marie Dupont")
    consent = wide_consent(patient)
    recognisable = make_public_case(patient=patient, consent=consent, deidentified=False)
    cropped = make_public_case(patient=patient, consent=consent, deidentified=True)
    link = patient_link(consent)
    visitor = Client()
    images = warm(visitor)
    assert set(images) == {recognisable.public_id, cropped.public_id}

    page = Client()
    form = page.get(link + "narrow/").content.decode()
    assert 'name="identifiable"' in form and 'name="allow_print"' in form
    assert 'name="allow_education"' not in form  # never allowed: not offered
    with django_capture_on_commit_callbacks(execute=True):
        response = page.post(
            link + "narrow/",
            {
                "replaces": consent.pk,
                "allow_website": "on",
                "allow_social": "on",
                # allow_print and identifiable unticked
                "signed_by_name": "zoe anne marie dupont",
            },
        )
    assert response.status_code == 302 and response["Location"] == link + "?changed=narrowed"
    new = patient.consent_in_force()
    consent.refresh_from_db()
    assert consent.superseded_by == new and not consent.is_active
    assert (new.allow_website, new.allow_social, new.allow_print, new.identifiable) == (
        True,
        True,
        False,
        False,
    )
    # A narrowing keeps the text the patient signed and the end they agreed to.
    assert new.form == consent.form and new.expires_at == consent.expires_at
    assert new.signed_by_name == "zoe anne marie dupont" and not new.signature
    assert set(new.cases.values_list("pk", flat=True)) == {recognisable.pk, cropped.pk}

    # The very next request of every surface: the recognisable case is gone, with every
    # image URL a visitor was ever shown; the cropped one stays.
    assert visitor.get(recognisable.get_absolute_url()).status_code == 404
    assert visitor.get(f"/api/cases/{recognisable.public_id}/").status_code == 404
    assert visitor.get(cropped.get_absolute_url()).status_code == 200
    assert_surfaces_agree(visitor, images)

    mine = page.get(response["Location"]).content.decode()
    assert "Your choices are saved" in mine
    assert cropped.get_absolute_url() in mine and recognisable.get_absolute_url() not in mine


def test_narrowing_and_renewing_are_events_with_the_patient_link_channel(
    django_capture_on_commit_callbacks,
):
    case = make_public_case(consent=None)
    patient, first = case.patient, case.consent
    first.allow_social = True
    Consent.objects.filter(pk=first.pk).update(allow_social=True)
    link = patient_link(first)
    page = Client()
    with django_capture_on_commit_callbacks(execute=True):
        page.post(
            link + "narrow/",
            {
                "replaces": first.pk,
                "allow_website": "on",
                "identifiable": "on",
                "signed_by_name": patient.full_name,
            },
        )
    narrowed = patient.consent_in_force()
    with django_capture_on_commit_callbacks(execute=True):
        page.post(
            link + "renew/",
            {
                "replaces": narrowed.pk,
                "allow_website": "on",
                "identifiable": "on",
                "signed_by_name": patient.full_name,
                "signature_data": signature(),
            },
        )
    renewed = patient.consent_in_force()
    assert renewed.pk not in (first.pk, narrowed.pk)
    trail = list(
        ConsentEvent.objects.filter(consent__patient=patient)
        .order_by("pk")
        .values_list("consent_id", "kind", "details", "actor_id", "actor_label")
    )
    assert [(c, k) for c, k, *_ in trail] == [
        (narrowed.pk, "renewed"),
        (first.pk, "superseded"),
        (renewed.pk, "renewed"),
        (narrowed.pk, "superseded"),
    ]
    for _, _, details, actor, label in trail:
        assert details["channel"] == Consent.Channel.PATIENT_PAGE == "patient_page"
        assert details["link_of_consent"] == first.pk and "ip" in details
        assert actor is None and label == f"{patient.full_name} (patient link)"
    assert [d["action"] for _, _, d, *_ in trail] == ["narrowed"] * 2 + ["renewed"] * 2
    assert trail[0][2]["scopes"] == ["clinic website"]
    assert trail[2][2]["form_version"] == ConsentForm.current().version


def test_renewing_before_expiry_signs_the_current_text_and_runs_a_new_term(
    settings, django_capture_on_commit_callbacks
):
    settings.CONSENT_RENEWAL_DAYS = 730
    t = now()
    patient = make_patient()
    consent = make_consent(patient, expires_at=t + timedelta(days=20))
    case = make_public_case(patient=patient, consent=consent)
    newer = ConsentForm.objects.create(
        version="2027-1", title="Photo consent", body="The 2027 text: what, who, why, until when."
    )
    link = patient_link(consent)
    visitor = Client()
    images = warm(visitor)
    page = Client()
    form = page.get(link + "renew/").content.decode()
    assert "version 2027-1" in form and "The 2027 text" in form
    ends = (t + timedelta(days=730)).date()
    assert f"{ends.day} {ends:%B %Y}" in form  # the new end, said before signing
    documents = set(stored_files("default"))
    with django_capture_on_commit_callbacks(execute=True):
        response = page.post(
            link + "renew/",
            {
                "replaces": consent.pk,
                "allow_website": "on",
                "identifiable": "on",
                "signed_by_name": patient.full_name,
                "signature_data": signature(),
            },
        )
    assert response.status_code == 302 and response["Location"] == link + "?changed=renewed"
    renewed = patient.consent_in_force()
    assert renewed.form == newer and renewed.expires_at.date() == ends
    assert renewed.patient_is_adult and renewed.representative_authority == ""
    # The drawn signature is kept, privately, as the evidence of this consent.
    added = set(stored_files("default")) - documents
    assert added == {renewed.signature.name} and added.pop().endswith(".png")
    assert "Thank you: your consent is renewed" in page.get(response["Location"]).content.decode()
    case.refresh_from_db()
    assert case.consent == renewed and case.is_public
    assert_surfaces_agree(visitor, images)


def test_renewing_early_never_shortens_the_consent(settings):
    settings.CONSENT_RENEWAL_DAYS = 30
    consent = make_consent(expires_at=now() + timedelta(days=300))
    link = patient_link(consent)
    Client().post(
        link + "renew/",
        {
            "replaces": consent.pk,
            "allow_website": "on",
            "identifiable": "on",
            "signed_by_name": consent.patient.full_name,
            "signature_data": signature(),
        },
    )
    assert consent.patient.consent_in_force().expires_at == consent.expires_at


def test_renewing_after_expiry_brings_back_what_the_rule_allows(
    django_capture_on_commit_callbacks,
):
    patient = make_patient()
    consent = make_consent(patient)
    published = make_public_case(patient=patient, consent=consent)
    in_review = make_case(
        patient=patient, consent=consent, status=Case.Status.REVIEW, reviewed_by=None
    )
    visitor = Client()
    images = warm(visitor)
    # The consent ends; the cron job takes the files down and records the expiry.
    Consent.objects.filter(pk=consent.pk).update(
        signed_at=now() - timedelta(days=400), expires_at=now() - timedelta(days=1)
    )
    sync_publication()
    assert visitor.get(published.get_absolute_url()).status_code == 404
    assert_surfaces_agree(visitor, images)
    assert ConsentEvent.objects.filter(consent=consent, kind="expired").count() == 1

    link = patient_link(consent)
    page = Client()
    mine = page.get(link).content.decode()
    assert "Your consent ended on" in mine and "Renew my consent" in mine
    assert "Stop some uses" not in mine  # nothing in force to narrow
    assert "Renew my consent" in page.get(link + "narrow/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = page.post(
            link + "renew/",
            {
                "replaces": consent.pk,
                "allow_website": "on",
                "identifiable": "on",
                "signed_by_name": patient.full_name,
                "signature_data": signature(),
            },
        )
    assert response.status_code == 302
    renewed = patient.consent_in_force()
    consent.refresh_from_db()
    assert consent.superseded_by == renewed and renewed.is_active
    # Public again, with fresh image names; the case in review stays off every surface.
    assert visitor.get(published.get_absolute_url()).status_code == 200
    assert all(fetch(visitor, u)[0] == 200 for u in image_urls(visitor, published))
    assert visitor.get(in_review.get_absolute_url()).status_code == 404
    assert_surfaces_agree(visitor, images)
    assert set(Case.objects.public().values_list("pk", flat=True)) == {published.pk}


def test_the_link_narrows_and_renews_but_never_widens():
    consent = make_consent(allow_website=True, allow_social=False, identifiable=False)
    link = patient_link(consent)
    page = Client()
    same = page.post(
        link + "narrow/",
        {
            "replaces": consent.pk,
            "allow_website": "on",
            "allow_social": "on",
            "identifiable": "on",
            "signed_by_name": consent.patient.full_name,
        },
    )
    assert "Nothing is changed" in same.content.decode()
    page.post(
        link + "renew/",
        {
            "replaces": consent.pk,
            "allow_website": "on",
            "allow_social": "on",
            "allow_education": "on",
            "identifiable": "on",
            "signed_by_name": consent.patient.full_name,
            "signature_data": signature(),
        },
    )
    renewed = consent.patient.consent_in_force()
    assert renewed != consent
    assert renewed.scopes() == ["clinic website"] and not renewed.identifiable


def test_keeping_no_use_at_all_is_pointed_to_withdrawal():
    consent = make_consent()
    link = patient_link(consent)
    response = Client().post(
        link + "narrow/", {"replaces": consent.pk, "signed_by_name": consent.patient.full_name}
    )
    assert "To stop every use, withdraw your consent instead" in response.content.decode()
    assert Consent.objects.count() == 1


def test_renewal_needs_the_patients_name_and_a_signature_and_saves_nothing_without():
    consent = make_consent()
    link = patient_link(consent)
    page = Client()
    documents = stored_files("default")
    unsigned = page.post(
        link + "renew/",
        {
            "replaces": consent.pk,
            "allow_website": "on",
            "signed_by_name": consent.patient.full_name,
        },
    ).content.decode()
    assert "Your signature is missing: sign in the box" in unsigned
    stranger = page.post(
        link + "renew/",
        {
            "replaces": consent.pk,
            "allow_website": "on",
            "signed_by_name": "Somebody Else",
            "signature_data": signature(),
        },
    ).content.decode()
    assert "Type your full name as the clinic has it" in stranger
    garbage = page.post(
        link + "renew/",
        {
            "replaces": consent.pk,
            "allow_website": "on",
            "signed_by_name": consent.patient.full_name,
            "signature_data": "data:image/png;base64,AAAA",
        },
    )
    assert garbage.status_code == 200 and "Sign in the box" in garbage.content.decode()
    assert Consent.objects.count() == 1 and ConsentEvent.objects.count() == 0
    assert stored_files("default") == documents


def test_a_representative_who_signed_before_signs_again_with_their_authority():
    patient = make_patient(full_name="Child Patient")
    consent = make_consent(patient, signed_by_name="Parent Name", representative_authority="parent")
    link = patient_link(consent)
    Client().post(
        link + "renew/",
        {
            "replaces": consent.pk,
            "allow_website": "on",
            "identifiable": "on",
            "signed_by_name": "Parent Name",
            "signature_data": signature(),
        },
    )
    renewed = patient.consent_in_force()
    assert (renewed.signed_by_name, renewed.representative_authority) == ("Parent Name", "parent")


def test_a_withdrawn_consent_is_given_again_only_with_the_clinic():
    consent = make_consent()
    consent.withdraw(channel=Consent.Channel.PATIENT_PAGE)
    link = patient_link(consent)
    page = Client()
    mine = page.get(link).content.decode()
    assert "Renew my consent" not in mine and "Stop some uses" not in mine
    renew = page.get(link + "renew/").content.decode()
    assert "please speak to the clinic" in renew and "signature-pad" not in renew
    page.post(
        link + "renew/",
        {
            "replaces": consent.pk,
            "allow_website": "on",
            "signed_by_name": consent.patient.full_name,
            "signature_data": signature(),
        },
    )
    page.post(link + "narrow/", {"replaces": consent.pk, "signed_by_name": "x"})
    assert Consent.objects.count() == 1


def test_a_decision_made_elsewhere_meanwhile_is_never_overwritten():
    consent = make_consent()
    patient = consent.patient
    link = patient_link(consent)
    page = Client()
    assert f'name="replaces" value="{consent.pk}"' in page.get(link + "narrow/").content.decode()
    # Meanwhile, the clinic records a new consent with the patient.
    staff_consent = record_consent(
        patient,
        consent.form,
        make_user(),
        None,
        allow_website=True,
        allow_print=True,
        identifiable=True,
        patient_is_adult=True,
        signed_by_name=patient.full_name,
        expires_at=consent.expires_at,
    )
    response = page.post(
        link + "narrow/",
        {"replaces": consent.pk, "allow_website": "on", "signed_by_name": patient.full_name},
    )
    assert response.status_code == 200
    assert "Your consent changed since this page was opened" in response.content.decode()
    assert patient.consent_in_force() == staff_consent

    # The same check holds inside the lock, and leaves no signature file behind.
    documents = stored_files("default")
    with pytest.raises(ConsentStandingChanged):
        record_consent(
            patient,
            consent.form,
            None,
            ("png", b"\x89PNG signature"),
            replaces=consent,
            allow_website=True,
            patient_is_adult=True,
            signed_by_name=patient.full_name,
            expires_at=consent.expires_at,
        )
    assert stored_files("default") == documents
    assert patient.consent_in_force() == staff_consent


def test_a_withdrawal_committed_between_the_check_and_the_lock_wins(monkeypatch):
    """The page's check passed, then another request withdrew before this one locked the
    patient's consents: the renewal is refused, its signature file removed."""
    import gallery.patient_link

    consent = make_consent()
    link = patient_link(consent)
    real = gallery.patient_link.record_consent

    def withdrawn_meanwhile(*args, **kwargs):
        Consent.objects.get(pk=consent.pk).withdraw(channel=Consent.Channel.PHONE)
        return real(*args, **kwargs)

    monkeypatch.setattr(gallery.patient_link, "record_consent", withdrawn_meanwhile)
    documents = stored_files("default")
    response = Client().post(
        link + "renew/",
        {
            "replaces": consent.pk,
            "allow_website": "on",
            "identifiable": "on",
            "signed_by_name": consent.patient.full_name,
            "signature_data": signature(),
        },
    )
    page = response.content.decode()
    assert response.status_code == 200 and "nothing was saved" in page
    assert "please speak to the clinic" in page and "signature-pad" not in page
    assert Consent.objects.count() == 1 and consent.patient.consent_in_force().withdrawn_at
    assert stored_files("default") == documents


def test_the_pages_are_private_and_posting_needs_the_csrf_token():
    consent = make_consent()
    link = patient_link(consent)
    browser = Client(enforce_csrf_checks=True)
    for path in ("narrow/", "renew/"):
        response = browser.get(link + path)
        assert response.status_code == 200
        assert set(response["Cache-Control"].split(", ")) == {"no-store", "private"}
        assert response["Referrer-Policy"] == "same-origin"
        assert response["X-Robots-Tag"] == "noindex"
        refused = browser.post(
            link + path,
            {"replaces": consent.pk, "allow_website": "on", "signed_by_name": "x"},
        )
        assert refused.status_code == 403
    assert Consent.objects.count() == 1


@pytest.mark.parametrize("token", ["short", "x" * 43, "../../etc/passwd"])
def test_a_wrong_token_is_a_plain_404(client, token):
    make_consent()
    for path in ("narrow/", "renew/"):
        assert client.get(f"/consent/{token}/{path}").status_code == 404
        assert client.post(f"/consent/{token}/{path}").status_code == 404


def test_a_typed_name_forgives_case_accents_hyphens_and_spacing():
    assert same_name("  zoe  anne marie DUPONT ", "Zoë Anne-Marie Dupont")
    assert not same_name("Zoe Dupont", "Zoë Anne-Marie Dupont")
    assert not same_name("", "")


def test_a_post_with_bad_values_is_a_form_error_never_a_500():
    consent = make_consent()
    link = patient_link(consent)
    for data in ({}, {"replaces": "abc"}, {"replaces": "9" * 30, "signed_by_name": "x" * 500}):
        for path in ("narrow/", "renew/"):
            response = Client().post(link + path, data)
            assert response.status_code == 200, (path, data)
            assert re.search(r'class="errorlist', response.content.decode())
    assert Consent.objects.count() == 1
