"""HTML pages: the upload form, a job's page and the list of jobs.

The pages are thin: they render a shell and let static/app.js talk to REST v1, so the
browser sees exactly what API clients see.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_babel import lazy_gettext

from tintype.jobs import state as jobstate
from tintype.jobs.options import FIELDS
from tintype.jobs.recolour import COLOUR_OPTIONS
from tintype.media import tone
from tintype.settings import Settings
from tintype.web.auth import can_see
from tintype.web.resources import get_app_settings

pages = Blueprint("pages", __name__)


@pages.get("/")
def index():
    settings = get_app_settings()
    return render_template("index.html", max_bytes=settings.max_upload_bytes, fields=FIELDS,
                           defaults={spec.name: spec.default_for(settings) for spec in FIELDS},
                           offered=offered_choices(settings),
                           tone={"has_colour": tone.HAS_COLOUR, "toned": tone.TONED, "side": tone.SIDE})


def offered_choices(settings: Settings) -> dict[str, tuple[str, ...] | None]:
    """Each choice option's usable values (a model needing an operator's file only once
    it is configured); None for the others."""
    return {spec.name: spec.choices_for(settings) if spec.kind in ("choice", "tristate") else None
            for spec in FIELDS}


@pages.get("/jobs")
def jobs_page():
    return render_template("jobs.html")


@pages.get("/jobs/<job_id>")
def job_page(job_id: str):
    job = jobstate.get_job(get_app_settings().database_url, job_id) if len(job_id) <= 32 else None
    if job is None or not can_see(job):
        abort(404)
    colour_fields = [spec for spec in FIELDS if spec.name in COLOUR_OPTIONS]  # what a recolour may change
    mask_fields = [spec for spec in FIELDS if spec.name in ("detect_damage", "mask_dilation")]  # beside the painter
    return render_template("job.html", job=job, colour_fields=colour_fields, mask_fields=mask_fields,
                           offered=offered_choices(get_app_settings()),
                           outcome={key: str(words) for key, words in OUTCOME.items()})


# What the result area says before there is a result (static/app.js says the same as the status changes).
# In the page's language: lazy, so each request says them in its visitor's.
OUTCOME = {"waiting": lazy_gettext("Not ready yet."),
           "cancelled": lazy_gettext("Cancelled: the job was stopped before it finished, so there is no result."),
           "failed": lazy_gettext("Failed:"), "no_reason": lazy_gettext("no reason was recorded.")}
