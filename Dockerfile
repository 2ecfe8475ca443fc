# One image for every process (web, ws, worker, beat); docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files are collected at build time and served by whitenoise from gunicorn.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
# Uploaded photos go to the media volume (docker-compose.yml); a new named volume takes
# this directory's owner, so the app can write there.
RUN mkdir -p /srv/media && chown nobody /srv/media
USER nobody
