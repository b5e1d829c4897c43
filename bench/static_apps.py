"""gunicorn + WhiteNoise for the static scenarios: the bench's WSGI app behind WhiteNoise."""

import os

from apps import wsgi_app
from whitenoise import WhiteNoise

whitenoise_app = WhiteNoise(wsgi_app, root=os.environ["STATIC_DIR"], prefix="/static/")
