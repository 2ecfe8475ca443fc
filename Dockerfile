# One image for every process (web, ws, worker, beat); docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files are collected at build time and served by whitenoise from gunicorn.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput
USER nobody
