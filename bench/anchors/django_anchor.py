"""The Django anchor for bench/run.sh: the same members page, the way a Django site
would serve it with file sessions (django.contrib.sessions.backends.file) and the
stock auth, session, CSRF and security middleware, on gunicorn.

    python django_anchor.py seed DIR    migrate a SQLite DB in DIR, create a member,
                                        log them in and print the session cookie
    gunicorn django_anchor:application  serve (DJANGO_ANCHOR_DIR=DIR)
"""

import os
import sys

import django
from django.conf import settings

DIR = os.environ.get("DJANGO_ANCHOR_DIR") or (sys.argv[2] if len(sys.argv) > 2 else ".")

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only-" + "x" * 50,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
    ],
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(DIR, "db.sqlite3"),
        }
    },
    SESSION_ENGINE="django.contrib.sessions.backends.file",
    SESSION_FILE_PATH=os.path.join(DIR, "sessions"),
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
    USE_TZ=True,
    TIME_ZONE="UTC",
    LOGGING_CONFIG=None,
)
django.setup()

from django.contrib.auth.decorators import login_required  # noqa: E402
from django.template import engines  # noqa: E402
from django.urls import path  # noqa: E402
from django.http import HttpResponse  # noqa: E402

PAGE = engines["django"].from_string(
    """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Your cabinet</title></head><body><main><section>
<h1>Welcome, {{ user.username }}!</h1><p>You are logged in. This page is for members only.</p>
<dl><dt>Logged in</dt><dd>{{ user.last_login|date:"j M Y, H:i" }} UTC</dd>
<dt>Session ends</dt><dd>{{ request.session.get_expiry_date|date:"j M Y, H:i" }} UTC</dd></dl>
<form method="post" action="/logout">{% csrf_token %}<button type="submit">Log out</button></form>
</section></main></body></html>"""
)


@login_required(login_url="/")
def cabinet(request):
    return HttpResponse(PAGE.render({"user": request.user, "request": request}, request))


urlpatterns = [path("cabinet", cabinet)]


def seed():
    """Creates the DB and a member; prints `sessionid=<key>` for a logged-in browser."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.file import SessionStore
    from django.core.management import call_command
    from django.utils import timezone

    os.makedirs(settings.SESSION_FILE_PATH, exist_ok=True)
    call_command("migrate", verbosity=0)
    user = User.objects.create_user("member", password="bench member password")
    user.last_login = timezone.now()
    user.save()
    # What django.contrib.auth.login() stores in the session.
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    print(f"sessionid={session.session_key}")


if __name__ == "__main__" and sys.argv[1:2] == ["seed"]:
    seed()
else:
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
