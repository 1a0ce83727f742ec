"""Production settings pass the deploy checklist; headers on representative pages;
log-in brute force is locked out."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

from tests.conftest import make_listed_case, make_user

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "off",
    "DJANGO_SECRET_KEY": "k7$Qz!v2LwP9#rT4yB8nM1xC6fH3jD0sA5gE2uR7iO9pK4lZ8qW1eY6tN3mV5bX0",
    "DJANGO_ALLOWED_HOSTS": "gallery.example-clinic.com",
    "DJANGO_HTTPS": "on",
}


def test_check_deploy_reports_no_issue_with_production_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env={**env, **PRODUCTION_ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env={**env, "DJANGO_DEBUG": "off"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


@pytest.fixture
def https(settings):
    """The production security settings, for in-process requests over 'https'."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True


def get(client, url, **kw):
    return client.get(url, headers={"X-Forwarded-Proto": "https"}, **kw)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/", "/gallery/", "CASE", "/api/cases/", "/staff/login/", "/treatments/microneedling/"]
)
def test_representative_pages_carry_the_security_headers(client, https, url):
    case = make_listed_case()
    response = get(client, case.get_absolute_url() if url == "CASE" else url)
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert "unsafe-inline" not in directives["script-src"] and "unsafe-eval" not in csp
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert "camera=()" in response["Permissions-Policy"]


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https(client, https):
    response = client.get("/gallery/")
    assert response.status_code == 301 and response["Location"].startswith("https://")


@pytest.mark.django_db
def test_only_the_embed_page_may_be_framed(client, https):
    response = get(client, "/embed/")
    assert "X-Frame-Options" not in response
    assert "frame-ancestors *" in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_the_camera_is_allowed_only_where_staff_upload(client, https):
    from tests.conftest import make_case

    user = make_user(groups=["Photographers"])
    case = make_case(created_by=user, status="draft", published_at=None)
    client.force_login(user)
    upload_page = get(client, f"/staff/cases/{case.pk}/")
    assert "camera=(self)" in upload_page["Permissions-Policy"]
    assert "camera=()" in get(client, "/staff/")["Permissions-Policy"]
    for other in (f"/staff/cases/{case.pk}/edit/", "/staff/cases/new/", case.get_absolute_url()):
        assert "camera=()" in get(client, other)["Permissions-Policy"], other


@pytest.mark.django_db
def test_cookies_are_secure_and_http_only(client, https):
    make_user("staffer", groups=["Reviewers"])
    page = get(client, "/staff/login/")
    token = page.cookies["csrftoken"]
    assert token["secure"] and token["httponly"]
    response = client.post(
        "/staff/login/",
        {
            "username": "staffer",
            "password": "correct-horse-battery",
            "csrfmiddlewaretoken": token.value,
        },
        headers={"X-Forwarded-Proto": "https", "Referer": "https://testserver/staff/login/"},
    )
    session = response.cookies["sessionid"]
    assert response.status_code == 302 and session["secure"] and session["httponly"]
    assert session["samesite"] == "Lax"


@pytest.mark.django_db
@pytest.mark.parametrize("login_url", ["/staff/login/", "/admin/login/"])
def test_five_failures_lock_the_account_even_with_the_right_password(client, login_url):
    make_user("target", groups=["Reviewers"], is_staff=True)
    for _ in range(5):
        response = client.post(login_url, {"username": "target", "password": "wrong"})
        assert response.status_code in (200, 429)
    locked = client.post(login_url, {"username": "target", "password": "correct-horse-battery"})
    assert locked.status_code == 429
    assert "locked for 30 minutes after five failed attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # The lock holds the account from this address only (tests/test_lockout.py).


@pytest.mark.django_db
def test_fewer_failures_then_the_right_password_logs_in(client):
    make_user("target", groups=["Reviewers"])
    for _ in range(4):
        client.post("/staff/login/", {"username": "target", "password": "wrong"})
    response = client.post(
        "/staff/login/", {"username": "target", "password": "correct-horse-battery"}
    )
    assert response.status_code == 302 and response["Location"] == "/staff/"
