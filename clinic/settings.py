"""Settings for the clinic gallery, read from environment variables.

One file for every environment: the embedded default (SQLite, local media) needs no
variable at all; production sets DATABASE_URL, the AWS_* variables and REDIS_URL.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    value = os.environ.get(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be on/off, true/false, yes/no or 1/0, not {value!r}")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = envbool("DJANGO_DEBUG", "off")

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (or DJANGO_DEBUG=on for development).")
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production"

ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "clinic.apps.ClinicConfig",  # the start-up checks of the clinic's settings
    "consent",
    "gallery",
    "analytics",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.sitemaps",  # its sitemap.xml and sitemap_index.xml templates
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_filters",
    "django.forms",
    "axes",
    "django_tasks_db",
]
# Widget templates may live in the project's templates/ (the Fitzpatrick swatches).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Early, so it marks every response of a private URL, whichever layer made it.
    "clinic.middleware.PrivatePagesNotStoredMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Compresses HTML and JSON (a 70 kB list page is 6 kB gzipped). Django pads the
    # output randomly against BREACH; public pages carry no secret anyway. Photos (JPEG,
    # WebP, AVIF, PNG) are already compressed and pass through untouched.
    "clinic.middleware.GZipTextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the URL's prefix on public pages, else the visitor's choice or browser.
    "clinic.i18n.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Patient mode: while staff have handed the tablet to a patient, every address but
    # the kiosk's own pages leads back to the kiosk (consent/kiosk.py).
    "consent.kiosk.KioskMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "clinic.middleware.PermissionsPolicyMiddleware",
    # Last: it must see the result of authentication to lock out brute force.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "clinic.urls"
WSGI_APPLICATION = "clinic.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "gallery.context_processors.clinic",
                "gallery.context_processors.languages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Persistent connections: a request should not pay for a new PostgreSQL login.
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 600),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite: WAL and a busy timeout so the dev server and a management command can
    # write at the same time without "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT: the gallery's queries are short, and compiling the facet aggregate took
    # longer than running it (bench/scale.py measured 3.35 s of a 3.7 s plan).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "staff:login"
LOGIN_REDIRECT_URL = "staff:dashboard"
LOGOUT_REDIRECT_URL = "staff:login"

LANGUAGE_CODE = "en"
# The languages of the public pages and the patient's pages (README, "Adding a language"):
# English at the plain URLs, every other language under its prefix (/es/gallery/).
LANGUAGES = [("en", "English"), ("es", "Español")]
# The catalogues: locale/<code>/LC_MESSAGES/django.po, compiled by `manage.py
# compile_catalogues` (make run, make test); the .mo files are never committed.
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]

# Media: two storages. "default" is private (originals, signatures, consent scans) and has
# no public URL; "public" holds only the renditions of publicly visible cases.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
MEDIA_URL = "/media/"
PUBLIC_MEDIA_URL = os.environ.get("PUBLIC_MEDIA_URL", "/media/public/")

AWS_STORAGE_BUCKET_NAME = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
AWS_PUBLIC_BUCKET_NAME = os.environ.get("AWS_PUBLIC_BUCKET_NAME", AWS_STORAGE_BUCKET_NAME)
AWS_S3_CUSTOM_DOMAIN = os.environ.get("AWS_S3_CUSTOM_DOMAIN", "")
AWS_S3_ENDPOINT_URL = os.environ.get("AWS_S3_ENDPOINT_URL", "")
if AWS_STORAGE_BUCKET_NAME:
    _s3 = {
        "endpoint_url": AWS_S3_ENDPOINT_URL or None,
        "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
        "access_key": os.environ.get("AWS_ACCESS_KEY_ID") or None,
        "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
        "addressing_style": os.environ.get("AWS_S3_ADDRESSING_STYLE") or None,
        "signature_version": "s3v4",
        # Never overwrite: every name is random, and a clash must not replace evidence.
        "file_overwrite": False,
        # No ACLs: the private bucket is private by policy, the public one readable by it.
        "default_acl": None,
    }
    STORAGES_PRIVATE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            **_s3,
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "location": os.environ.get("AWS_PRIVATE_LOCATION", "private"),
            # Staff see originals through signed URLs that expire in minutes.
            "querystring_auth": True,
            "querystring_expire": envint("AWS_QUERYSTRING_EXPIRE", 300),
        },
    }
    STORAGES_PUBLIC = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            **_s3,
            "bucket_name": AWS_PUBLIC_BUCKET_NAME,
            "location": os.environ.get(
                "AWS_PUBLIC_LOCATION",
                "public" if AWS_PUBLIC_BUCKET_NAME == AWS_STORAGE_BUCKET_NAME else "",
            ),
            "querystring_auth": False,
            "custom_domain": AWS_S3_CUSTOM_DOMAIN or None,
            "object_parameters": {"CacheControl": "public, max-age=31536000, immutable"},
        },
    }
else:
    STORAGES_PRIVATE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        # base_url is a URL nobody routes: private files are only streamed by
        # permission-checked views, never linked.
        "OPTIONS": {"location": MEDIA_ROOT / "private", "base_url": "/private-not-served/"},
    }
    STORAGES_PUBLIC = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT / "public", "base_url": PUBLIC_MEDIA_URL},
    }

STORAGES = {
    "default": STORAGES_PRIVATE,
    "public": STORAGES_PUBLIC,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Serve public renditions from the app itself on the embedded default; a proxy or CDN
# does it in production.
SERVE_PUBLIC_MEDIA = envbool("SERVE_PUBLIC_MEDIA", "off" if AWS_STORAGE_BUCKET_NAME else "on")

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Several sites (or test runs) may share one Redis.
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "gallery"),
        },
        # The analytics counters (analytics/counters.py): a cache of their own, so that
        # nothing evicts them for pages.
        "counts": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "gallery") + "-counts",
        },
    }
else:
    # A file cache is shared by every process on this machine, so an invalidation made by
    # one process (a withdrawal) is seen by the others. Beyond one machine: REDIS_URL.
    _cache_dir = Path(os.environ.get("CACHE_DIR", BASE_DIR / ".cache"))
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": _cache_dir,
        },
        # The analytics counters (analytics/counters.py), apart from the pages: the file
        # cache culls a third of its entries when full, and must not take counts with it.
        # A flush every minute empties it, so a modest limit is never reached.
        "counts": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": _cache_dir / "counts",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        },
    }

# Renditions are built by Django's tasks framework: at once, in the request, on one machine;
# by `manage.py db_worker` processes from a database queue (django-tasks-db) beyond it.
TASKS_BACKEND = os.environ.get("TASKS_BACKEND", "immediate")
if TASKS_BACKEND not in ("immediate", "database"):
    raise ImproperlyConfigured("TASKS_BACKEND must be 'immediate' or 'database'.")
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend"
        if TASKS_BACKEND == "database"
        else "django.tasks.backends.immediate.ImmediateBackend"
    }
}

MAILERS = {
    "default": {
        "BACKEND": os.environ.get(
            "DJANGO_EMAIL_BACKEND",
            "django.core.mail.backends.console.EmailBackend"
            if DEBUG
            else "django.core.mail.backends.smtp.EmailBackend",
        ),
        "OPTIONS": {
            "host": os.environ.get("EMAIL_HOST", "localhost"),
            "port": envint("EMAIL_PORT", 25),
            "username": os.environ.get("EMAIL_HOST_USER", "") or None,
            "password": os.environ.get("EMAIL_HOST_PASSWORD", "") or None,
            "use_tls": envbool("EMAIL_USE_TLS", "off"),
        }
        if not DEBUG and "DJANGO_EMAIL_BACKEND" not in os.environ
        else {},
    }
}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "gallery@localhost")

# Upload limits (the photo pipeline enforces them with clear messages).
PHOTO_MAX_BYTES = envint("PHOTO_MAX_BYTES", 40 * 1024 * 1024)
PHOTO_MAX_PIXELS = envint("PHOTO_MAX_PIXELS", 60_000_000)
# Scanned consent forms that are images are checked like photos.
CONSENT_IMAGE_VALIDATOR = "gallery.images.validate_photo"
# A consent the patient renews on their own page runs this many days from signing.
CONSENT_RENEWAL_DAYS = envint("CONSENT_RENEWAL_DAYS", 730)
if not 1 <= CONSENT_RENEWAL_DAYS <= 3660:
    raise ImproperlyConfigured("CONSENT_RENEWAL_DAYS must be between 1 and 3660 (ten years)")
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

CLINIC_NAME = os.environ.get("CLINIC_NAME", "Demo Skin Clinic")
CLINIC_BOOKING_URL = os.environ.get("CLINIC_BOOKING_URL", "https://example.com/book")
# The country (ISO 3166 code) of the clinic's first location, made from CLINIC_NAME and
# CLINIC_BOOKING_URL when locations arrived: its advertising rules apply to the cases of
# that time (gallery/jurisdictions.py). Later locations are set up in the admin.
CLINIC_COUNTRY = os.environ.get("CLINIC_COUNTRY", "US")
# The clinic's namespace for the identifiers and codes of its FHIR exports (consent/fhir.py):
# a URL it controls, so that its patient references and consent numbers are told apart from
# any other organisation's.
CLINIC_FHIR_BASE = os.environ.get("CLINIC_FHIR_BASE", "https://example.com/fhir")
GALLERY_WATERMARK_TEXT = os.environ.get("GALLERY_WATERMARK_TEXT", "")
# The site's address as patients open it: links in emails sent outside a request (the
# consent reminders) start with it.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000" if DEBUG else "")

# The clinic's look. The logo is an absolute URL, a path on this site, or a path among the
# static files (gallery/logo.svg); without one the header shows the clinic's name. The
# colours carry white text and are checked for contrast at start-up (clinic/checks.py).
from clinic import branding  # noqa: E402

CLINIC_LOGO_URL = os.environ.get("CLINIC_LOGO_URL", "")
CLINIC_BRAND_COLOUR = os.environ.get("CLINIC_BRAND_COLOUR", branding.DEFAULT_BRAND)
CLINIC_ACCENT_COLOUR = os.environ.get("CLINIC_ACCENT_COLOUR", branding.DEFAULT_ACCENT)
CLINIC_BRAND_CSS = branding.brand_css(CLINIC_BRAND_COLOUR, CLINIC_ACCENT_COLOUR)

# --- Security -------------------------------------------------------------------------
# Safe by default: with debug off the site is HTTPS-only, behind a TLS proxy that sets
# X-Forwarded-Proto. DJANGO_HTTPS=off is for plain-http loopback runs (tests, benchmarks).
HTTPS = envbool("DJANGO_HTTPS", "off" if DEBUG else "on")
if HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain http
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = envint("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", "on")
    SECURE_HSTS_PRELOAD = envbool("DJANGO_HSTS_PRELOAD", "on")
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = envint("DJANGO_SESSION_SECONDS", 8 * 3600)  # a working day
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content Security Policy (Django's own middleware): scripts only from this site or with
# the per-request nonce, never inline or eval; no plugins; framing refused except on the
# embed page, which overrides frame-ancestors.
from django.utils.csp import CSP  # noqa: E402


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url if "://" in url else f"https://{url}")
    return f"{parts.scheme}://{parts.netloc}"


# Public images (and staff's signed links) may come from the object store or its CDN.
_media_origin = sorted(
    {
        _origin(u)
        for u in (
            os.environ.get("PUBLIC_MEDIA_ORIGIN", ""),
            AWS_S3_CUSTOM_DOMAIN,
            AWS_S3_ENDPOINT_URL if AWS_STORAGE_BUCKET_NAME else "",
        )
        if u
    }
)
# A logo on another host (the clinic's own website, a CDN) is allowed by its origin.
_logo_origin = [_origin(CLINIC_LOGO_URL)] if "://" in CLINIC_LOGO_URL else []
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    # The brand colours are one inline <style>, allowed by its hash (pages are cached whole,
    # so a per-request nonce cannot be used).
    "style-src": [CSP.SELF, branding.csp_hash(CLINIC_BRAND_CSS)],
    "img-src": [CSP.SELF, "data:", "blob:", *_media_origin, *_logo_origin],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Brute force: django-axes counts failures per username *and* address together, and after
# five stops that address guessing that account for 30 minutes. Failures from elsewhere
# (invented usernames, the same username from other addresses) never lock a member of
# staff out of their own account from their own address.
# What this does not stop: one address spraying many usernames gets five tries at each,
# and many addresses get five tries each at one account. A second, higher limit per
# address alone would catch the first, but axes compares every lockout group against
# the one AXES_FAILURE_LIMIT (and a per-address group at five would let any shared
# address, a clinic's NAT or the proxy itself, be locked by strangers). So the login
# paths are rate-limited per address at the proxy instead (README, "Deploying"), and
# staff passwords go through Django's validators.
AXES_ENABLED = envbool("AXES_ENABLED", "on")
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=envint("AXES_COOLOFF_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "staff/locked_out.html"
# The number of proxies in front of the app (nginx: 1; a CDN in front of it: 2). The
# client's address is read from X-Forwarded-For behind exactly that many.
TRUSTED_PROXY_COUNT = envint("AXES_PROXY_COUNT", 1 if HTTPS else 0)
AXES_CLIENT_IP_CALLABLE = "clinic.forwarded.client_address"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # libvips reports every resize and thread pool at INFO: its warnings and errors only.
    "loggers": {"pyvips": {"level": "WARNING"}},
}
