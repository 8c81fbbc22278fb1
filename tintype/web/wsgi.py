"""WSGI entry point: `gunicorn tintype.web.wsgi:app`."""

from tintype.web.app import create_app

app = create_app()
