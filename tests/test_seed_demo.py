import io
import re

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from gallery.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERNAME
from gallery.models import Case, Location, Practitioner

pytestmark = pytest.mark.django_db


def test_seed_demo_publishes_labelled_cases_for_both_treatments_and_every_skin_type(
    client, django_capture_on_commit_callbacks
):
    # Publishing puts the images up after commit, as on the staff pages.
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", count=12, stdout=open("/dev/null", "w"))
    public = Case.objects.public()
    assert public.count() == 12
    assert set(public.values_list("fitzpatrick", flat=True)) == {1, 2, 3, 4, 5, 6}
    for slug in ("microneedling", "rf-microneedling"):
        assert set(public.filter(treatment__slug=slug).values_list("fitzpatrick", flat=True)) == {
            1,
            2,
            3,
            4,
            5,
            6,
        }
    assert public.values("concerns").distinct().count() >= 4
    assert not public.filter(is_demo=False).exists()
    html = client.get("/gallery/").content.decode()
    assert "Demo case" in html
    # Two locations, one in Australia whose cases carry its warning; three practitioners,
    # each with public cases.
    assert sorted(Location.objects.values_list("country", flat=True)) == ["AU", "US"]
    assert Practitioner.objects.count() == 3
    assert all(p.cases.filter(pk__in=public).exists() for p in Practitioner.objects.all())
    au = public.filter(location__country="AU").first()
    assert au is not None and au.warning and au.warning in au.disclosure()
    assert au.warning in client.get(au.get_absolute_url()).content.decode()
    # Idempotent: a second run creates nothing.
    call_command("seed_demo", count=12, stdout=open("/dev/null", "w"))
    assert Case.objects.count() == 12
    assert (Location.objects.count(), Practitioner.objects.count()) == (2, 3)


def seed(*args, **kw) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, count=1, stdout=out, **kw)
    return out.getvalue()


def test_with_debug_off_the_demo_is_seeded_without_a_login(settings):
    settings.DEBUG = False
    output = seed()
    assert not User.objects.filter(username=DEMO_USERNAME).exists()
    assert "Debug is off: no demo login made" in output and "--staging-login" in output
    assert Case.objects.public().filter(is_demo=True).count() == 1
    assert not any(u.has_usable_password() for u in User.objects.all())


def test_with_debug_off_an_existing_demo_login_loses_its_published_password(settings):
    User.objects.create_user(DEMO_USERNAME, password=DEMO_PASSWORD)
    settings.DEBUG = False
    assert "password is removed" in seed()
    assert not User.objects.get(username=DEMO_USERNAME).check_password(DEMO_PASSWORD)


def test_a_staging_login_gets_a_random_password_shown_once(settings, client):
    settings.DEBUG = False
    output = seed("--staging-login")
    password = re.search(r"password (\S+)", output).group(1)
    assert password != DEMO_PASSWORD and len(password) >= 20
    assert output.count(password) == 1
    user = User.objects.get(username=DEMO_USERNAME)
    assert user.check_password(password) and not user.check_password(DEMO_PASSWORD)
    assert password not in seed("--staging-login")  # a new one each run


def test_with_debug_on_the_documented_demo_login_works(settings, client):
    settings.DEBUG = True
    seed()
    response = client.post("/staff/login/", {"username": "demo", "password": "demo-gallery-2026"})
    assert response.status_code == 302 and "_auth_user_id" in client.session
