"""Two app instances (gunicorn) sharing PostgreSQL, SeaweedFS and Redis, plus a task
worker: a case uploaded and published through A is served by B with its images; its
consent withdrawn through B; on the next request neither instance shows it and every
image URL it had answers 404. An unsigned request for an original is refused by S3.

Runs when PostgreSQL, S3 and Redis are configured (CI's services pass, which sets
REQUIRE_SCALEOUT=1 so that a missing service fails the test instead of skipping it).
"""

import http.cookiejar
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import sessions_form_data, skin_jpeg, weeks_ago

ROOT = Path(settings.BASE_DIR)
SERVICES = bool(
    settings.AWS_STORAGE_BUCKET_NAME
    and settings.REDIS_URL
    and "postgres" in os.environ.get("DATABASE_URL", "")
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A browser-like HTTP client with its own cookies, for one person on one instance."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, method: str, url: str, data: bytes | None = None, headers=None):
        full = urllib.parse.urljoin(self.base, url)
        req = urllib.request.Request(full, data=data, method=method, headers=headers or {})
        try:
            with self.opener.open(req, timeout=60) as r:
                return r.status, r.read(), r.geturl()
        except urllib.error.HTTPError as e:
            return e.code, e.read(), full

    def get(self, url: str):
        return self.request("GET", url)

    def csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def post(self, url: str, fields: dict, files: dict | None = None):
        headers = {"Referer": urllib.parse.urljoin(self.base, url), "X-CSRFToken": self.csrf()}
        if files:
            boundary = uuid.uuid4().hex
            body = io.BytesIO()
            for name, value in fields.items():
                for v in value if isinstance(value, list) else [value]:
                    disposition = f'Content-Disposition: form-data; name="{name}"'
                    body.write(f"--{boundary}\r\n{disposition}\r\n\r\n{v}\r\n".encode())
            for name, (filename, content) in files.items():
                disposition = (
                    f'Content-Disposition: form-data; name="{name}"; filename="{filename}"'
                )
                body.write(
                    f"--{boundary}\r\n{disposition}\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n".encode()
                )
                body.write(content + b"\r\n")
            body.write(f"--{boundary}--\r\n".encode())
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
            return self.request("POST", url, body.getvalue(), headers)
        data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": self.csrf()}, doseq=True)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return self.request("POST", url, data.encode(), headers)

    def log_in(self, username: str):
        self.get("/staff/login/")
        status, body, url = self.post(
            "/staff/login/", {"username": username, "password": "two-instances-pass"}
        )
        assert url.endswith("/staff/"), f"log-in failed for {username}: {status}"


@pytest.fixture
def stack(tmp_path):
    """A fresh database, two gunicorn instances and a worker, stopped by pid afterwards."""
    if not SERVICES:
        if os.environ.get("REQUIRE_SCALEOUT"):
            pytest.fail("PostgreSQL, S3 and Redis must be configured for this test")
        pytest.skip("needs PostgreSQL, S3 (AWS_*) and REDIS_URL")
    import psycopg

    base_url = os.environ["DATABASE_URL"]
    name = f"twoinst_{uuid.uuid4().hex[:8]}"
    admin_url = base_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url.replace("postgres://", "postgresql://"), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    run = f"twoinst-{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        "DATABASE_URL": base_url.rsplit("/", 1)[0] + f"/{name}",
        "AWS_PRIVATE_LOCATION": f"{run}/private",
        "AWS_PUBLIC_LOCATION": f"{run}/public",
        "CACHE_KEY_PREFIX": run,
        "TASKS_BACKEND": "database",
        "DJANGO_SECRET_KEY": "two-instances-secret",
        "DJANGO_DEBUG": "off",
        "DJANGO_HTTPS": "off",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=300
    )
    subprocess.run(
        [*manage, "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=300
    )
    setup = """
from django.contrib.auth.models import Group, User
from datetime import timedelta
from django.utils import timezone
from consent.models import Consent, ConsentForm, Patient
roles = [("photographer", "Photographers"), ("reviewer", "Reviewers"),
         ("officer", "Consent officers")]
for name, group in roles:
    u = User.objects.create_user(name, password="two-instances-pass", is_staff=True)
    u.groups.add(Group.objects.get(name=group))
p = Patient.objects.create(reference="TWO-1", full_name="Two Instances")
Consent.objects.create(patient=p, form=ConsentForm.objects.get(version="2026-1"),
    allow_website=True,
    identifiable=True, patient_is_adult=True, signed_at=timezone.now() - timedelta(days=1),
    signed_by_name="Two Instances", expires_at=timezone.now() + timedelta(days=365))
from gallery.models import Location, Practitioner
dr = Practitioner.objects.create(name="Dr. Two", slug="dr-two")
dr.locations.add(Location.objects.get())
"""
    subprocess.run([*manage, "shell", "-c", setup], cwd=ROOT, env=env, check=True, timeout=120)
    procs = []
    ports = []
    try:
        for _ in range(2):
            port = free_port()
            ports.append(port)
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "gunicorn",
                        "clinic.wsgi",
                        "-b",
                        f"127.0.0.1:{port}",
                        "-w",
                        "2",
                        "--timeout",
                        "120",
                        "--no-control-socket",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=open(tmp_path / f"gunicorn-{port}.log", "w"),
                    start_new_session=True,
                )
            )
        procs.append(
            subprocess.Popen(
                [*manage, "db_worker", "--interval", "0.2", "--no-startup-delay"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(tmp_path / "worker.log", "w"),
                start_new_session=True,
            )
        )
        for port in ports:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise AssertionError(
                            (tmp_path / f"gunicorn-{port}.log").read_text()[-3000:]
                        ) from None
                    time.sleep(0.3)
        yield {
            "a": f"http://127.0.0.1:{ports[0]}",
            "b": f"http://127.0.0.1:{ports[1]}",
            "env": env,
            "run": run,
        }
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        import boto3

        s3 = boto3.resource(
            "s3",
            endpoint_url=settings.AWS_S3_ENDPOINT_URL,
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
            region_name=os.environ.get("AWS_S3_REGION_NAME") or "us-east-1",
        )
        for bucket in {settings.AWS_STORAGE_BUCKET_NAME, settings.AWS_PUBLIC_BUCKET_NAME}:
            s3.Bucket(bucket).objects.filter(Prefix=run).delete()
        with psycopg.connect(
            admin_url.replace("postgres://", "postgresql://"), autocommit=True
        ) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_instances_share_everything_and_withdrawal_holds_on_both(stack):
    a, b = stack["a"], stack["b"]
    photographer = Client(a)
    photographer.log_in("photographer")
    status, body, _ = photographer.get("/staff/cases/new/")
    patient_pk = re.search(rb'href="/staff/cases/new/(\d+)/"', body).group(1).decode()
    status, body, _ = photographer.get(f"/staff/cases/new/{patient_pk}/")
    consent_pk = re.search(rb'name="consent" value="(\d+)"', body) or re.search(
        rb'<option value="(\d+)"[^>]*>\s*Signed', body
    )
    consent_pk = consent_pk.group(1).decode()
    treatment = re.search(rb'name="treatment" value="(\d+)"', body).group(1).decode()
    concern = re.search(rb'name="concerns" value="(\d+)"', body).group(1).decode()
    status, body, url = photographer.post(
        f"/staff/cases/new/{patient_pk}/",
        {
            "consent": consent_pk,
            "treatment": treatment,
            "concerns": concern,
            "body_area": "face",
            "fitzpatrick": "5",
            "skin_type": "oily",
            "weeks_after_entered": "12",
            "location": re.search(rb'name="location".*?<option value="(\d+)" selected>', body, re.S)
            .group(1)
            .decode(),
            "practitioner": re.search(rb'<option value="(\d+)"[^>]*>Dr. Two \(', body)
            .group(1)
            .decode(),
            **sessions_form_data(
                [
                    (weeks_ago(12 + 4 * n), "", [("whole_area", "1.5", None, None)])
                    for n in (2, 1, 0)
                ]
            ),
        },
    )
    case_pk = re.search(r"/staff/cases/(\d+)/$", url).group(1)
    for role in ("before", "after"):
        status, body, _ = photographer.post(
            f"/staff/cases/{case_pk}/photos/",
            {"role": role, "view": "front"},
            files={"file": (f"{role}.jpg", skin_jpeg(31, 5, role, (1200, 900)))},
        )
        assert status == 201, body
    # The upload returned at once; the worker builds the renditions.
    deadline = time.monotonic() + 120
    while json.loads(photographer.get(f"/staff/cases/{case_pk}/renditions.json")[1])["pending"]:
        assert time.monotonic() < deadline, "the worker did not build the renditions"
        time.sleep(0.5)
    photographer.get(f"/staff/cases/{case_pk}/")
    assert photographer.post(f"/staff/cases/{case_pk}/submit/", {})[0] == 200
    reviewer = Client(a)
    reviewer.log_in("reviewer")
    reviewer.get(f"/staff/cases/{case_pk}/")
    status, body, _ = reviewer.post(f"/staff/cases/{case_pk}/publish/", {})
    assert b"Approved and published" in body, body[-2000:]

    visitor_b = Client(b)
    status, body, _ = visitor_b.get("/api/cases/")
    listing = json.loads(body)
    assert listing["count"] == 1
    case = listing["results"][0]
    images = {
        part.split(" ")[0]
        for pair in case["pairs"]
        for side in ("before", "after")
        for srcset in pair[side]["srcset"].values()
        for part in srcset.split(", ")
    }
    assert images and all(u.startswith(settings.AWS_S3_ENDPOINT_URL) for u in images)
    assert all(visitor_b.get(u)[0] == 200 for u in images)
    pages = [f"/gallery/{case['id']}/", f"/api/cases/{case['id']}/"]
    visitor_a = Client(a)
    for visitor in (visitor_a, visitor_b):
        assert all(visitor.get(p)[0] == 200 for p in pages)  # both instances cache it

    officer = Client(b)
    officer.log_in("officer")
    officer.get(f"/staff/consents/{consent_pk}/")
    status, body, _ = officer.post(f"/staff/consents/{consent_pk}/withdraw/", {"channel": "phone"})
    assert b"Consent withdrawn" in body

    for visitor in (visitor_a, visitor_b):
        assert [visitor.get(p)[0] for p in pages] == [404, 404]
        assert case["id"].encode() not in visitor.get("/gallery/")[1]
        assert json.loads(visitor.get("/api/cases/")[1])["count"] == 0
    assert {visitor_a.get(u)[0] for u in images} == {404}

    # Originals live in the private bucket: without a signature S3 refuses them.
    from django.core.files.storage import storages  # noqa: F401  (settings only)

    run = stack["run"]
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=settings.AWS_S3_ENDPOINT_URL,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        region_name=os.environ.get("AWS_S3_REGION_NAME") or "us-east-1",
    )
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(
            Bucket=settings.AWS_STORAGE_BUCKET_NAME, Prefix=f"{run}/private/originals/"
        ).get("Contents", [])
    ]
    assert len(keys) == 2
    for key in keys:
        unsigned = f"{settings.AWS_S3_ENDPOINT_URL}/{settings.AWS_STORAGE_BUCKET_NAME}/{key}"
        assert visitor_a.get(unsigned)[0] == 403
