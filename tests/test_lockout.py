"""The log-in lockout stops one address guessing one account, and never locks a member
of staff out of their own account from their own address. Requests arrive as nginx
passes them on: from the proxy's address, with X-Forwarded-For ending in the address
the client connected from."""

import pytest
from axes.models import AccessAttempt
from django.test import Client, RequestFactory

from clinic.forwarded import client_address
from tests.conftest import make_user

PROXY = "127.0.0.1"
LOGINS = ["/staff/login/", "/admin/login/"]
PASSWORD = "correct-horse-battery"  # make_user's


@pytest.fixture(autouse=True)
def behind_one_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 1


@pytest.fixture
def alice(db):
    return make_user("alice", groups=["Reviewers"], is_staff=True)


def log_in(url, username, password, forwarded):
    """One log-in attempt from a fresh browser; ``forwarded`` is the header nginx sends."""
    client = Client(REMOTE_ADDR=PROXY)
    response = client.post(
        url, {"username": username, "password": password}, HTTP_X_FORWARDED_FOR=forwarded
    )
    response.logged_in = "_auth_user_id" in client.session
    return response


@pytest.mark.django_db
@pytest.mark.parametrize("url", LOGINS)
def test_five_failures_lock_the_account_from_that_address(alice, url):
    for _ in range(5):
        assert log_in(url, "alice", "wrong", "198.51.100.1").status_code in (200, 429)
    locked = log_in(url, "alice", PASSWORD, "198.51.100.1")
    assert locked.status_code == 429 and not locked.logged_in
    assert "locked for 30 minutes after five failed attempts" in locked.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("url", LOGINS)
def test_strangers_failures_do_not_lock_staff_out_from_their_own_address(alice, url):
    for n in range(20):
        log_in(url, f"invented{n}", "wrong", "198.51.100.2")
    for _ in range(5):
        log_in(url, "alice", "wrong", "198.51.100.3")
    assert log_in(url, "alice", PASSWORD, "198.51.100.3").status_code == 429

    response = log_in(url, "alice", PASSWORD, "198.51.100.4")
    assert response.status_code == 302 and response.logged_in


@pytest.mark.django_db
@pytest.mark.parametrize("url", LOGINS)
def test_forged_forwarded_entries_do_not_escape_the_lock(alice, url):
    # The client writes its own X-Forwarded-For (a new address each time, or an unclosed
    # quote meant to swallow the rest); nginx appends the address it really came from.
    forged = [f"1.2.3.{n}, 203.0.113.7" for n in range(4)] + ['", 203.0.113.7']
    for header in forged:
        log_in(url, "alice", "wrong", header)
    locked = log_in(url, "alice", PASSWORD, "9.9.9.9, 203.0.113.7")
    assert locked.status_code == 429 and not locked.logged_in


@pytest.mark.django_db
def test_the_address_recorded_is_the_clients_own(alice):
    log_in("/staff/login/", "alice", "wrong", "203.0.113.7")
    log_in("/staff/login/", "alice", "wrong", "1.2.3.4, 203.0.113.8")
    recorded = AccessAttempt.objects.values_list("ip_address", flat=True)
    assert set(recorded) == {"203.0.113.7", "203.0.113.8"}


def test_the_client_is_the_entry_as_many_proxies_from_the_right(settings):
    request = RequestFactory().get(
        "/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7, 192.0.2.10"
    )
    settings.TRUSTED_PROXY_COUNT = 2  # a CDN, then nginx
    assert client_address(request) == "203.0.113.7"
    settings.TRUSTED_PROXY_COUNT = 0  # no proxy: the header is anyone's to write
    assert client_address(request) == PROXY


@pytest.mark.parametrize("header", [None, "", "not-an-address", "203.0.113.7\x00"])
def test_a_request_that_bypassed_the_proxy_is_known_by_its_socket_address(header):
    extra = {} if header is None else {"HTTP_X_FORWARDED_FOR": header}
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.99", **extra)
    assert client_address(request) == "192.0.2.99"
