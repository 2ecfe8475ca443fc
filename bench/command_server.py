"""Runs management commands for bench.stack.Stack in one long-lived process.

    python bench/command_server.py      (environment: the stack's, DATABASE_URL included)

Reads one JSON list of arguments per line on stdin (["check_stock"]) and answers one
JSON line on stdout: {"ok": bool, "output": "..."}. Django starts once, so a command
costs its own work, not the seconds of a manage.py start-up. Ends at end of input.
"""

import io
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_project.settings")


def main() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    answers = sys.stdout
    sys.stdout = sys.stderr  # whatever else prints must not corrupt the answers
    for line in sys.stdin:
        output = io.StringIO()
        try:
            call_command(*json.loads(line), stdout=output, stderr=output)
            ok = True
        except Exception as error:  # answered, so the caller sees why
            output.write(f"\n{type(error).__name__}: {error}\n")
            ok = False
        finally:
            connections.close_all()  # hold no connection between commands
        answers.write(json.dumps({"ok": ok, "output": output.getvalue()}) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
