"""Every URL of the URL configuration, walked as anonymous and as each role.

Staff and admin URLs: anonymous users are sent to log in; a role without the view's
permission gets 403; nothing else gets through. Public URLs never ask anyone to log in,
and never show a draft, an original, a signature or a consent document. A new URL that
fits none of these kinds fails the test until it is classified.
"""

import re

import pytest
from django.contrib.auth.models import Group
from django.urls import URLPattern, URLResolver, get_resolver

from gallery.models import Case
from tests.conftest import make_case, make_consent, make_user

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "Photographers", "Reviewers", "Consent officers", "superuser"]
PUBLIC = {
    "gallery:home",
    "gallery:list",
    "gallery:case",
    "gallery:treatment",
    "gallery:practitioner",
    "gallery:location",
    "gallery:api-list",
    "gallery:api-case",
    "gallery:api-openapi",
    "gallery:embed",
    "healthz",
    "robots",
    "sitemap",
    "sitemap-section",
    "public-media",
    "patient-consent",
    "patient-withdraw",
    "switch-language",
    "patient-narrow",
    "patient-renew",
    "analytics:event",
    "analytics:book",
}
P, R, C, S = "Photographers", "Reviewers", "Consent officers", "superuser"
# Who may use each staff page: the product's rules, written out independently of the
# decorators, so a view declaring the wrong permission fails here.
STAFF_ROLES = {
    "staff:dashboard": {P, R, C, S},
    "staff:coverage": {R, S},
    "staff:photo-original": {R, C, S},
    "staff:photo-preview": {P, R, C, S},
    "staff:case-new": {P, S},
    "staff:case-create": {P, S},
    "staff:case": {P, R, C, S},
    "staff:case-edit": {P, R, S},
    "staff:case-renditions": {P, R, C, S},
    "staff:photo-upload": {P, R, S},
    "staff:photo-delete": {P, R, S},
    "staff:photo-crop": {P, R, S},
    "staff:photo-frame": {P, R, S},
    "staff:case-submit": {P, R, S},
    "staff:case-publish": {R, S},
    "staff:case-send-back": {R, S},
    "staff:case-unpublish": {R, S},
    "staff:case-reopen": {R, S},
    "consent:list": {P, R, C, S},
    "consent:patient-new": {P, C, S},
    "consent:patient": {P, R, C, S},
    "consent:new": {P, C, S},
    "consent:detail": {P, R, C, S},
    "consent:withdraw": {C, S},
    "consent:send-link": {C, S},
    "consent:document": {C, S},
    "consent:evidence": {C, S},
    "consent:fhir": {C, S},
    "consent:kiosk-start": {P, C, S},
    "consent:kiosk": {P, C, S},
    "consent:kiosk-unlock": {P, R, C, S},
    "analytics:report": {R, S},
    "analytics:report-csv": {R, S},
}
OPEN_STAFF = {"staff:login", "staff:logout", "admin:login", "admin:logout"}


def walk(resolver, prefix="", namespace=""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}{entry.name}" if entry.name else None
            yield prefix + str(entry.pattern), name, entry.callback


@pytest.fixture
def world():
    """One of everything a URL can point at."""
    owner = make_user("owner", groups=["Photographers"], is_staff=True)
    case = make_case(created_by=owner)
    draft = make_case(status="draft", published_at=None, created_by=owner)
    consent = make_consent(draft.patient)
    return {
        "case": case,
        "draft": draft,
        "consent": consent,
        "photo": draft.photos.first(),
        "patient": draft.patient,
    }


def fill(pattern: str, name: str | None, world) -> str:
    """A concrete path for a pattern, pointing at real objects."""
    path = pattern.replace("^", "").replace("$", "").replace("\\Z", "")
    draft, consent, photo = world["draft"], world["consent"], world["photo"]
    values = {
        "public_id": draft.public_id,  # a draft: public pages must answer 404
        "slug": "microneedling",
        "section": "cases",
        "token": "x" * 43,
        "patient": str(world["patient"].pk),
        "photo": str(photo.pk),
        "width": "480",
        "fmt": "jpeg",
        "path": "r/none/480.jpg",
        "app_label": "gallery",
        "content_type_id": "1",
        "object_id": "1",
        "language": "es",
    }
    if name and name.startswith("consent:"):
        values["pk"] = str(consent.pk)
    elif name and "photo" in (name or "") and name.startswith("staff:photo-"):
        values["pk"] = str(photo.pk)
    else:
        values["pk"] = str(draft.pk)
    if name and name.startswith("admin:"):
        from django.apps import apps

        for model in apps.get_models():
            prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}_"
            if name.startswith(prefix):
                obj = model.objects.first()
                values["object_id"] = str(obj.pk) if obj else "1"

    def sub(match):
        return values.get(match.group(2), "1")

    path = re.sub(r"<(?:(\w+):)?(\w+)>", sub, path)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values.get(m.group(1), "1"), path)
    return "/" + path


def users():
    made = {}
    for role in ROLES[1:-1]:
        made[role] = make_user(f"role-{role.split()[0].lower()}", groups=[role], is_staff=True)
    made["superuser"] = make_user("root", is_staff=True, is_superuser=True)
    return made


def test_every_url_is_walked_as_every_role(client, world):
    accounts = users()
    seen_kinds = {"public": 0, "staff": 0, "admin": 0}
    failures = []
    for pattern, name, callback in walk(get_resolver()):
        path = fill(pattern, name, world)
        perms = getattr(callback, "staff_permissions", None)
        any_of = getattr(callback, "staff_any_of", False)
        if name in PUBLIC:
            kind = "public"
        elif name in OPEN_STAFF:
            continue
        elif path.startswith("/admin/"):
            kind = "admin"
        elif perms is not None:
            kind = "staff"
        else:
            failures.append(f"{pattern} ({name}) is neither public nor behind staff_required")
            continue
        seen_kinds[kind] += 1
        for role in ROLES:
            if role == "anonymous":
                client.logout()
                user = None
            else:
                user = accounts[role]
                client.force_login(user)
            for method in ("get", "post"):
                response = getattr(client, method)(path)
                status = response.status_code
                location = response.get("Location", "")
                to_login = status == 302 and "login" in location
                if status >= 500:
                    failures.append(f"{method} {path} as {role}: {status}")
                if kind == "public":
                    if to_login:
                        failures.append(f"{method} {path} as {role}: public page asks to log in")
                    if (
                        name in ("gallery:case", "gallery:api-case")
                        and method == "get"
                        and status != 404
                    ):
                        failures.append(f"{path} as {role}: a draft answered {status}")
                    continue
                if user is None:
                    if not to_login:
                        failures.append(
                            f"{method} {path} as anonymous: {status}, not sent to log in"
                        )
                    continue
                if kind == "staff":
                    if name not in STAFF_ROLES:
                        failures.append(f"{name}: add it to STAFF_ROLES")
                        continue
                    allowed = role in STAFF_ROLES[name]
                    declared = (
                        any(user.has_perm(p) for p in perms) if any_of else user.has_perms(perms)
                    )
                    if allowed != declared:
                        failures.append(f"{name} as {role}: the decorator disagrees with the rules")
                    if not allowed and status != 403:
                        failures.append(f"{method} {path} as {role}: {status}, expected 403")
                    if allowed and (to_login or status == 403 and not _object_rule(name)):
                        failures.append(
                            f"{method} {path} as {role}: refused ({status}) though permitted"
                        )
                if kind == "admin" and role != "superuser" and not _admin_allowed(user, name):
                    # (302 within the admin: the old object URL redirecting to /change/.)
                    if status not in (403, 404) and not (status == 302 and not to_login):
                        failures.append(f"{method} {path} as {role}: {status}, expected 403")
    assert failures == [], "\n".join(failures[:40])
    assert seen_kinds["public"] >= 10 and seen_kinds["staff"] >= 20 and seen_kinds["admin"] >= 30


def _object_rule(name: str | None) -> bool:
    """Views that also check the object (only the photographer's own drafts)."""
    return name in {
        "staff:case-edit",
        "staff:photo-upload",
        "staff:photo-delete",
        "staff:photo-crop",
        "staff:case-submit",
    }


def _admin_allowed(user, name: str | None) -> bool:
    """Admin pages a role may see: the index, and models it has a view permission on."""
    if name in (
        "admin:index",
        "admin:password_change",
        "admin:password_change_done",
        "admin:jsi18n",
        "admin:view_on_site",
        "admin:autocomplete",
    ):
        return True
    match = re.match(r"admin:(\w+?)_(\w+?)_(\w+)$", name or "")
    if match:
        app, model, action = match.groups()
        needed = {
            "changelist": "view",
            "change": "view",
            "history": "view",
            "add": "add",
            "delete": "delete",
        }.get(action, "view")
        return user.has_perm(f"{app}.{needed}_{model}") or user.has_perm(f"{app}.change_{model}")
    match = re.match(r"admin:app_list", name or "")
    return bool(match)


def test_public_pages_never_show_private_files(client, world):
    from django.core.files.storage import storages

    draft = world["draft"]
    assert not Case.objects.public().filter(pk=draft.pk).exists()
    for url in ["/", "/gallery/", "/api/cases/", "/sitemap.xml", "/treatments/microneedling/"]:
        html = client.get(url).content.decode()
        assert draft.public_id not in html
        assert "originals/" not in html and "signatures/" not in html and "renditions/" not in html
    assert Group.objects.count() >= 3
    del storages
