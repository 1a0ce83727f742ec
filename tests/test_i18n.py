"""The patient's language: every public page and the patient's own pages in English and
Spanish, each language at its own address; the consent signed in the language it was read
in; and a catalogue that cannot fall behind the templates.

The completeness checks read the sources themselves (no GNU gettext needed): a visible
word in a patient-facing template outside ``{% translate %}``/``{% blocktranslate %}``
fails, and so does a marked string the Spanish catalogue lacks or leaves untranslated.
"""

import ast
import io
import re
import zipfile
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import translation

from clinic.management.commands.compile_catalogues import problems
from consent.evidence import evidence_bundle
from consent.models import Consent, ConsentForm, ConsentReminder, hash_token, record_consent
from tests.conftest import make_listed_case, make_patient, make_user, now, stored_files
from tests.test_consent_capture import form_data

ROOT = Path(settings.BASE_DIR)
CATALOGUE = ROOT / "locale" / "es" / "LC_MESSAGES" / "django.po"
# What a patient or a visitor reads: the public pages, the patient's link pages, errors.
PATIENT_FACING = [
    "base.html",
    "_site_header.html",
    "_site_footer.html",
    "404.html",
    "500.html",
    *(f"gallery/{p.name}" for p in sorted((ROOT / "templates" / "gallery").glob("*.html"))),
    # Patient mode: the tablet in the patient's hands (the unlock page is for staff, marked
    # all the same, as it is reached from the patient's page).
    *(f"consent/{p.name}" for p in sorted((ROOT / "templates" / "consent").glob("kiosk*.html"))),
    "consent/email/renewal_reminder.html",
]
# Words that are the same in every language: units.
UNTRANSLATED_WORDS = {"mm"}
SPANISH = '<html lang="es">'


def spanish(client, url, **headers):
    """GET ``url`` as a browser preferring Spanish, following the redirect to the Spanish
    address of a public page."""
    return client.get(url, HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9,en;q=0.5", follow=True, **headers)


# --- every page in Spanish ---------------------------------------------------------------


@pytest.fixture
def public_case(db):
    return make_listed_case()


@pytest.mark.django_db
def test_every_public_page_is_in_spanish_for_a_browser_that_prefers_it(client, public_case):
    pages = {
        "/": "Resultados reales, con los datos de cada caso",
        "/gallery/": "Galería de antes y después",
        "/gallery/?fitzpatrick=6": "Aún no hay casos para Tipo VI",
        public_case.get_absolute_url(): "Los datos",
        "/treatments/microneedling/": "Qué esperar",
        "/embed/": "Ver 1 caso de",
        "/no-such-page/": "Esta página no está en la galería",
    }
    for url, words in pages.items():
        response = spanish(client, url)
        html = response.content.decode()
        assert SPANISH in html and words in html, url
        assert response["Content-Language"] == "es", url
        if url != "/no-such-page/":
            assert response.redirect_chain == [(f"/es{url}", 302)], url
            assert response.status_code == 200, url
    # The disclosure under every photo, built in Python, is in Spanish too.
    html = spanish(client, public_case.get_absolute_url()).content.decode()
    assert "3 sesiones de microneedling, profundidad máxima de la aguja 1.5 mm" in html
    assert "foto del después 12 semanas después de la última sesión" in html
    # The names the first migration creates are in the catalogue; a clinic's own are not.
    assert (
        "Cicatrices de acné" in html
        and ">Microneedling con radiofrecuencia<" in spanish(client, "/gallery/").content.decode()
    )


@pytest.mark.django_db
def test_english_stays_at_the_plain_addresses_and_the_api_has_no_language(client, public_case):
    for url in ["/", "/gallery/", public_case.get_absolute_url(), "/treatments/microneedling/"]:
        response = client.get(url)
        assert response.status_code == 200 and '<html lang="en">' in response.text, url
        assert "Accept-Language" in response["Vary"] and "Cookie" in response["Vary"]
    # The API, the sitemap and the files answer alike in any language, at one address.
    english = client.get("/api/cases/").json()
    assert client.get("/api/cases/", HTTP_ACCEPT_LANGUAGE="es").json() == english
    for url in [
        "/es/api/cases/",
        "/es/api/openapi.json",
        f"/es/api/cases/{public_case.public_id}/",
    ]:
        assert client.get(url).status_code == 404, url
    assert client.get("/sitemap.xml", HTTP_ACCEPT_LANGUAGE="es").status_code == 200


@pytest.mark.django_db
def test_the_switch_takes_a_visitor_to_the_same_page_in_the_other_language(client, public_case):
    html = client.get("/gallery/?fitzpatrick=3&utm_source=x").content.decode()
    switch = re.search(r'href="(/language/es/\?next=[^"]+)"', html).group(1).replace("&amp;", "&")
    assert "utm_source" not in switch  # only what the page reads: it is shared by the cache
    response = client.get(switch)
    assert response.status_code == 302 and response["Location"] == "/es/gallery/?fitzpatrick=3"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "es"
    assert "no-store" in response["Cache-Control"]
    page = client.get(response["Location"])
    assert SPANISH in page.text and "Filtrar y ordenar" in page.text
    # Back to English: the choice wins over the browser's preference for Spanish.
    back = client.get("/language/en/?next=/es/gallery/", HTTP_ACCEPT_LANGUAGE="es")
    assert back["Location"] == "/gallery/"
    page = client.get("/gallery/", HTTP_ACCEPT_LANGUAGE="es")
    assert page.status_code == 200 and "Filter and sort" in page.text
    # Another site is never a place to go back to; an unknown language is no page.
    assert client.get("/language/es/?next=https://evil.example/")["Location"] == "/es/"
    assert client.get("/language/es/?next=//evil.example/")["Location"] == "/es/"
    assert client.get("/language/xx/?next=/").status_code == 404
    assert client.post("/language/es/").status_code == 405


@pytest.mark.django_db
def test_the_patients_pages_follow_the_browser_and_the_switch(client, public_case):
    consent = public_case.consent
    token = consent.new_access_token()
    consent.save(update_fields=["access_token_hash"])
    page = spanish(client, f"/consent/{token}/")
    assert SPANISH in page.text and "Su consentimiento para las fotos" in page.text
    assert "sitio web de la clínica" in page.text  # what the patient allowed, in Spanish
    assert " de " in re.search(r"Termina el</dt><dd>([^<]+)<", page.text).group(1)
    confirm = spanish(client, f"/consent/{token}/withdraw/")
    assert "¿Retirar su consentimiento para las fotos?" in confirm.text
    assert "1 caso con sus fotos se quitará del sitio web de inmediato." in confirm.text
    # With the switch instead of the browser's preference.
    client.get(f"/language/es/?next=/consent/{token}/")
    done = client.post(f"/consent/{token}/withdraw/")
    assert SPANISH in done.text and "Su consentimiento está retirado" in done.text
    assert "Retirado el " in done.text and " a las " in done.text


@pytest.mark.django_db
def test_the_renewal_page_is_in_spanish(client, public_case):
    token = "r" * 40
    ConsentReminder.objects.create(
        consent=public_case.consent, days=30, channel="email", token_hash=hash_token(token)
    )
    page = spanish(client, f"/consent/{token}/")
    assert SPANISH in page.text and "Renovar su consentimiento para las fotos" in page.text


@pytest.mark.django_db
def test_public_pages_are_cached_once_per_language(client, public_case):
    english = client.get("/gallery/")
    again = client.get("/gallery/")
    assert again["X-Cache"] == "hit" and again.content == english.content
    spanish_page = client.get("/es/gallery/")
    assert spanish_page.get("X-Cache") != "hit" and SPANISH in spanish_page.text
    assert client.get("/es/gallery/")["X-Cache"] == "hit"
    assert english["ETag"] != spanish_page["ETag"]


@pytest.mark.django_db
def test_pages_and_the_sitemap_name_each_language_s_address(client, public_case):
    html = client.get(public_case.get_absolute_url()).content.decode()
    case = public_case.public_id
    for code, url in [("en", f"/gallery/{case}/"), ("es", f"/es/gallery/{case}/")]:
        assert f'<link rel="alternate" hreflang="{code}" href="http://testserver{url}">' in html
    assert f'hreflang="x-default" href="http://testserver/gallery/{case}/"' in html
    sitemap = client.get("/sitemap.xml").content.decode()
    assert sitemap.count(f"<loc>http://testserver/es/gallery/{case}/</loc>") == 1
    assert sitemap.count(f"<loc>http://testserver/gallery/{case}/</loc>") == 1
    alternate = '<xhtml:link rel="alternate" hreflang="{}" href="http://testserver{}"/>'
    assert sitemap.count(alternate.format("es", f"/es/gallery/{case}/")) == 2
    assert sitemap.count(alternate.format("x-default", f"/gallery/{case}/")) == 2
    assert sitemap.count(alternate.format("es", "/es/treatments/microneedling/")) == 2
    assert "Disallow: /language/" in client.get("/robots.txt").text


# --- the consent in the patient's language -----------------------------------------------


@pytest.fixture
def officer(client):
    user = make_user(groups=["Consent officers"])
    client.force_login(user)
    return user


@pytest.mark.django_db
def test_a_consent_read_in_spanish_keeps_its_language_and_the_text_signed(client, officer):
    patient = make_patient()
    page = client.get(f"/staff/consents/new/{patient.pk}/?language=es")
    form = ConsentForm.objects.get(version="2026-1")
    title, body = form.text("es")
    assert title in page.text and "Su derecho a retirarlo" in page.text
    assert "¿Dónde puede usar la clínica sus fotos?" in page.text  # the form's own words
    assert '<input type="hidden" name="language" value="es">' in page.text
    response = client.post(
        f"/staff/consents/new/{patient.pk}/", form_data(language="es", expires_at=None)
    )
    assert response.status_code == 200 and "Obligatorio." in response.text  # errors too
    response = client.post(f"/staff/consents/new/{patient.pk}/", form_data(language="es"))
    assert response.status_code == 302
    consent = Consent.objects.get(patient=patient)
    assert consent.language == "es" and consent.signed_text == f"{title}\n\n{body}"
    assert consent.events.get(kind="granted").details["language"] == "es"
    # The evidence bundle holds the very text the patient signed, and says which.
    z = zipfile.ZipFile(io.BytesIO(evidence_bundle(consent)))
    assert z.read("consent-form-2026-1.txt").decode() == consent.signed_text
    assert "Language of the text signed: es" in z.read("summary.txt").decode()
    # A language the form has no text in falls back to the default on the page.
    page = client.get(f"/staff/consents/new/{patient.pk}/?language=xx")
    assert '<input type="hidden" name="language" value="en">' in page.text


@pytest.mark.django_db
def test_record_consent_keeps_the_english_text_by_default_and_refuses_an_unknown_language():
    form = ConsentForm.objects.get(version="2026-1")
    patient = make_patient()
    fields = {"signed_by_name": "Ada", "expires_at": now() + timedelta(days=365)}
    consent = record_consent(patient, form, None, ("png", b"x"), **fields)
    assert consent.language == "en" and consent.signed_text.startswith(form.title + "\n\n")
    assert "right to withdraw" in consent.signed_text.lower()
    files = stored_files()
    with pytest.raises(ValidationError):
        record_consent(patient, form, None, ("png", b"x"), language="fr", **fields)
    assert Consent.objects.filter(patient=patient).count() == 1 and stored_files() == files


@pytest.mark.django_db
def test_a_signed_version_may_gain_a_language_but_never_change_one():
    from tests.conftest import make_consent

    form = make_consent().form
    form.translations = {**form.translations, "es": {**form.translations["es"], "body": "x"}}
    with pytest.raises(ValidationError):
        form.save()
    form.refresh_from_db()
    form.title = "Changed"
    with pytest.raises(ValidationError):
        form.save()
    form.refresh_from_db()
    form.translations = {}
    with pytest.raises(ValidationError):
        form.save()
    fresh = ConsentForm(version="2027-1", title="T", body="B", translations={"xx": {}})
    with pytest.raises(ValidationError):
        fresh.full_clean()


# --- the catalogue cannot fall behind -----------------------------------------------------


class VisibleText(HTMLParser):
    """The words a reader sees in what is left of a template once its tags, variables and
    translated blocks are taken out."""

    ATTRIBUTES = {"alt", "title", "aria-label", "placeholder", "aria-valuetext"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag in ("script", "style", "svg"):
            self._skip += 1
        attrs = dict(attrs)
        shown = {k: v for k, v in attrs.items() if k in self.ATTRIBUTES}
        if tag == "meta" and (
            attrs.get("name") == "description" or "og:" in (attrs.get("property") or "")
        ):
            if attrs.get("property") not in (
                "og:url",
                "og:type",
                "og:image",
                "og:locale",
                "og:site_name",
            ):
                shown["content"] = attrs.get("content")
        for value in shown.values():
            self._check(value or "")

    def handle_endtag(self, tag) -> None:
        if tag in ("script", "style", "svg"):
            self._skip -= 1

    def handle_data(self, data) -> None:
        if not self._skip:
            self._check(data)

    def _check(self, text: str) -> None:
        words = [w for w in re.findall(r"[^\W\d_]+", text) if w not in UNTRANSLATED_WORDS]
        if words:
            self.found.append(" ".join(text.split()))


def untranslated_text(source: str) -> list[str]:
    """Visible text of a template that is not marked for translation."""
    source = re.sub(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", "", source, flags=re.S)
    source = re.sub(
        r"{%\s*blocktrans(?:late)?\b.*?{%\s*endblocktrans(?:late)?\s*%}", "", source, flags=re.S
    )
    source = re.sub(r"{%.*?%}|{{.*?}}|{#.*?#}", "", source, flags=re.S)
    parser = VisibleText()
    parser.feed(source)
    parser.close()
    return parser.found


def test_the_check_finds_unmarked_text():
    assert untranslated_text("<p>{% translate 'Hello' %} {{ name }} · 3</p>") == []
    assert untranslated_text("<p>Hello {{ name }}</p>") == ["Hello"]
    assert untranslated_text('<a aria-label="Close">{% translate "x" %}</a>') == ["Close"]
    assert untranslated_text('<meta name="description" content="Photos">') == ["Photos"]
    assert untranslated_text("{% blocktranslate %}Hi {{ n }}{% endblocktranslate %}") == []


@pytest.mark.parametrize("name", PATIENT_FACING)
def test_every_word_of_a_patient_facing_template_is_marked_for_translation(name):
    source = (ROOT / "templates" / name).read_text()
    assert untranslated_text(source) == [], f"templates/{name}: wrap these in {{% translate %}}"


def _unescape(literal: str) -> str:
    return ast.literal_eval(literal)


def template_msgids(source: str) -> set[tuple[str | None, str]]:
    """The msgids a template asks for, as makemessages would write them."""
    found = set()
    for match in re.finditer(r"""{%\s*trans(?:late)?\s+("[^"]*"|'[^']*')""", source):
        found.add((None, _unescape(match.group(1))))
    for match in re.finditer(r"""_\(("[^"]*"|'[^']*')\)""", source):
        found.add((None, _unescape(match.group(1))))
    block = r"{%\s*blocktrans(?:late)?\b[^%]*%}(.*?){%\s*endblocktrans(?:late)?\s*%}"
    for match in re.finditer(block, source, flags=re.S):
        singular = match.group(1).split("{% plural %}")[0].replace("%", "%%")
        found.add((None, re.sub(r"{{\s*(\w+)\s*}}", r"%(\1)s", singular)))
    return found


GETTEXT_CALLS = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy"}
PGETTEXT_CALLS = {"pgettext", "pgettext_lazy"}


def python_msgids(source: str) -> set[tuple[str | None, str]]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        args = [a.value for a in node.args if isinstance(a, ast.Constant)]
        if node.func.id in GETTEXT_CALLS and args:
            found.add((None, args[0]))
        elif node.func.id in PGETTEXT_CALLS and len(args) >= 2:
            found.add((args[0], args[1]))
    return found


def test_the_spanish_catalogue_translates_every_marked_string():
    catalogue = polib.pofile(str(CATALOGUE))
    assert problems(catalogue) == []  # none empty, none fuzzy, placeholders kept
    known = {(e.msgctxt, e.msgid) for e in catalogue if not e.obsolete}
    wanted = set()
    for path in sorted((ROOT / "templates").rglob("*.html")):
        wanted |= {(c, m, path.name) for c, m in template_msgids(path.read_text())}
    for app in ("clinic", "consent", "gallery"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                wanted |= {(c, m, path.name) for c, m in python_msgids(path.read_text())}
    missing = sorted(
        f"{where}: {msgid!r}" for ctx, msgid, where in wanted if (ctx, msgid) not in known
    )
    assert missing == [], "run makemessages -l es and translate:\n" + "\n".join(missing)
    assert len(wanted) > 150


def test_the_catalogue_is_compiled_and_not_committed():
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files", "*.mo"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert tracked == ""
    with translation.override("es"):
        assert translation.gettext("Before and after gallery") == "Galería de antes y después"


@pytest.mark.django_db
def test_a_patient_renewing_in_spanish_signs_the_spanish_text(client):
    from tests.conftest import make_consent
    from tests.test_patient_renewal import signature
    from tests.test_side_doors import patient_link

    patient = make_patient()
    consent = make_consent(patient, expires_at=now() + timedelta(days=20))
    link = patient_link(consent)
    client.get(f"/language/es/?next={link}")
    page = client.get(link + "renew/").content.decode()
    title, body = ConsentForm.objects.get(version="2026-1").text("es")
    assert SPANISH in page and "Lea el consentimiento" in page and "Su derecho a retirarlo" in page
    response = client.post(
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
    assert renewed.language == "es" and renewed.signed_text == f"{title}\n\n{body}"
    assert "Gracias: su consentimiento está renovado." in client.get(response["Location"]).text
