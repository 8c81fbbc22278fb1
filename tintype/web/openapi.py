"""The OpenAPI 3.1 document of REST v1. Tests validate real responses against these schemas."""

from __future__ import annotations

import json
from typing import Any

from tintype.jobs.batches import MAX_ITEMS as MAX_BATCH_ITEMS
from tintype.jobs.keyframes import MAX_KEYFRAMES, SOURCES
from tintype.jobs.options import FIELDS, Field
from tintype.jobs.recolour import COLOUR_OPTIONS
from tintype.jobs.remask import MASK_OPTIONS
from tintype.media.box_tracks import PREVIEW_SPAN
from tintype.media.frame_at import DEFAULT_SIDE, FORMATS, MAX_SIDE, MIN_SIDE
from tintype.settings import Settings
from tintype.web.openapi_uploads import UPLOAD, UPLOAD_FIELD, UPLOAD_ID, UPLOAD_PATHS

NULLABLE_STR = {"type": ["string", "null"]}
FLAG_WORDS = ["1", "0", "true", "false", "on", "off", "yes", "no"]


def _bounds(spec: Field) -> dict[str, Any]:
    kind = "integer" if spec.kind == "int" else "number"
    return {"type": kind, "minimum": spec.low, "maximum": spec.high}


def option_field(spec: Field, settings: Settings | None = None) -> dict[str, Any]:
    """A job option as the multipart form sends it (tintype.jobs.options.FIELDS); with
    `settings`, a choice lists only what they make usable (Field.choices_for)."""
    schema: dict[str, Any] = {"type": "string"}
    if spec.kind in ("int", "float"):
        schema = _bounds(spec)
    elif spec.kind == "choice":
        schema = {"type": "string", "enum": list(spec.choices_for(settings) if settings else spec.choices)}
    elif spec.kind == "tristate":
        schema = {"type": "string", "enum": [*spec.choices, *(w for w in FLAG_WORDS if w not in spec.choices)]}
    elif spec.kind == "flag":
        schema = {"type": "string", "enum": FLAG_WORDS}
    elif spec.kind == "boxes":
        schema["example"] = '[{"x": 10, "y": 20, "w": 64, "h": 32}]'
    elif spec.kind == "kinds":
        schema["example"] = ",".join(spec.choices[:2])
    default = f"the server's {spec.setting.upper()} setting" if spec.setting else json.dumps(spec.default)
    return {**schema, "description": f"{spec.help}; default: {default}"}


def stored_option(spec: Field) -> dict[str, Any]:
    """A job option as the job shows it, typed and resolved."""
    if spec.kind in ("int", "float"):
        return _bounds(spec)
    if spec.kind in ("choice", "tristate"):
        return {"type": "string", "enum": list(spec.choices)}
    if spec.kind == "flag":
        return {"type": "boolean"}
    if spec.kind == "kinds":
        return {"type": "array", "items": {"enum": list(spec.choices)}}
    return {"type": "array", "items": {"type": "object", "required": ["x", "y", "w", "h"],
                                       "additionalProperties": {"type": "integer"}}}

ERROR = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {"type": "object", "required": ["code", "message"],
                             "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}},
}

KEYFRAME_ENTRY = {
    "type": "object", "required": ["frame", "source"],
    "properties": {"frame": {"type": "integer", "minimum": 0, "description": "frame number, from 0"},
                   "source": {"enum": list(SOURCES), "description": "user: sent with the job; auto: chosen by "
                              "the pipeline; reference: made by the pipeline from the colour reference"}},
}

KEYFRAME_LIST = {
    "type": "object", "required": ["items"],
    "properties": {"items": {"type": "array", "items": {
        "type": "object", "required": ["frame", "source", "url", "thumbnail_url"],
        "properties": {**KEYFRAME_ENTRY["properties"], "url": {"type": "string", "description": "the PNG"},
                       "thumbnail_url": {"type": "string", "description": "a small JPEG"}}}}},
}

JOB = {
    "type": "object",
    "required": ["id", "kind", "status", "stage", "operations", "options", "progress", "input",
                 "result", "error", "notes", "timings", "created_at", "links", "keyframes", "recolour_of"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "owner": {"type": "string", "description": "whose job it is; 'local' without API keys"},
        "kind": {"enum": ["image", "video"]},
        "status": {"enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
        "stage": {"type": "string", "description": "queued, probing, track_queued, tracking, "
                  "image_queued, processing, finalize_queued, finalizing, done, cancelled"},
        "operations": {"type": "array", "items": {"enum": ["colorize", "inpaint"]}},
        "options": {"type": "object", "description": "what the job runs with, every default resolved",
                    "required": [spec.name for spec in FIELDS],
                    "properties": {spec.name: stored_option(spec) for spec in FIELDS}},
        "progress": {"type": "object", "required": ["done", "total", "fraction"], "properties": {
            "done": {"type": "integer", "minimum": 0}, "total": {"type": "integer", "minimum": 0},
            "fraction": {"type": "number", "minimum": 0, "maximum": 1}}},
        "input": {"type": "object", "required": ["name", "bytes", "sha256", "facts", "has_mask", "url"],
                  "properties": {"name": {"type": "string"}, "bytes": {"type": "integer"},
                                 "sha256": {"type": "string"}, "facts": {"type": "object"},
                                 "has_mask": {"type": "boolean"}, "has_reference": {"type": "boolean"},
                                 "url": {"type": "string"}}},
        "preview_url": NULLABLE_STR,
        "compare_url": {"type": ["string", "null"], "description": "before | after poster of a video job"},
        "masks": {"oneOf": [{"type": "null"}, {
            "type": "object", "description": "the masks an inpainting job filled (all sources, dilated)",
            "required": ["url", "content_type", "poster_url"],
            "properties": {"url": {"type": "string"}, "content_type": {"type": "string"},
                           "poster_url": NULLABLE_STR}}]},
        "outputs": {"type": "object", "description": "files made beside the result, by name (e.g. an archival "
                    "master), once the job has succeeded; each is downloaded from its url",
                    "additionalProperties": {"type": "object", "required": ["url", "content_type", "bytes", "label"],
                                             "properties": {"url": {"type": "string"},
                                                            "content_type": {"type": "string"},
                                                            "bytes": {"type": "integer"},
                                                            "label": {"type": "string"}}}},
        "provenance": {"oneOf": [{"type": "null"}, {
            "type": "object", "description": "the result's C2PA manifest once the job has succeeded: signed and "
            "embedded (C2PA_SIGN_CERT/C2PA_SIGN_KEY set) or an unsigned sidecar, what it says was done, and "
            "where to download its JSON (also the output `manifest`)",
            "required": ["signed", "actions", "manifest_url"],
            "properties": {"signed": {"type": "boolean"}, "manifest_url": {"type": "string"},
                           "actions": {"type": "array", "items": {
                               "type": "object", "required": ["action", "description"],
                               "properties": {"action": {"type": "string"},
                                              "description": {"type": "string"}}}}}}]},
        "quality": {"oneOf": [{"type": "null"}, {
            "type": "object", "description": "no-reference measures of a finished video (media.metrics)",
            "required": ["frames", "scene_cuts", "warping_error", "chroma_warping_error", "colourfulness"],
            "properties": {"frames": {"type": "integer"}, "scene_cuts": {"type": "array", "items": {"type": "integer"}},
                           "warping_error": {"type": "number"}, "chroma_warping_error": {"type": "number"},
                           "colourfulness": {"type": "number"}, "temporal_strength": {"type": "number"},
                           "measured_width": {"type": "integer"}}}]},
        "result": {"oneOf": [{"type": "null"}, {
            "type": "object", "required": ["url", "content_type", "bytes"],
            "properties": {"url": {"type": "string"}, "content_type": {"type": "string"},
                           "bytes": {"type": "integer"}}}]},
        "error": {"oneOf": [{"type": "null"}, {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": NULLABLE_STR}}]},
        "notes": {"type": "array", "items": {"type": "string"}},
        "keyframes": {"type": "array", "items": KEYFRAME_ENTRY,
                      "description": "colour pictures of single frames that guide the colour, by frame"},
        "recolour_of": {"type": ["string", "null"], "description": "the job this one colours again "
                        "(POST /jobs/{job_id}/recolour)"},
        "timings": {"type": "object", "additionalProperties": {"type": "number"}},
        "created_at": {"type": "string"}, "started_at": NULLABLE_STR, "finished_at": NULLABLE_STR,
        "links": {"type": "object", "required": ["self", "page"],
                  "properties": {"self": {"type": "string"}, "page": {"type": "string"},
                                 "keyframes": {"type": "string"}}},
    },
}

COUNT = {"type": "integer", "minimum": 0}
POOL = {
    "type": "object",
    "required": ["waiting", "waiting_in_broker", "waiting_in_database", "running", "oldest_waiting_seconds",
                 "workers_alive", "slots_alive", "slots_per_worker", "workers_needed"],
    "properties": {
        "waiting": {**COUNT, "description": "work waiting for the pool: the larger of the two below"},
        "waiting_in_broker": {"type": ["integer", "null"], "minimum": 0,
                              "description": "messages waiting in the pool's queue; null: the broker cannot be read"},
        "waiting_in_database": {**COUNT, "description": "pending chunks, chunks whose heartbeat stopped, and jobs "
                                                        "handed to the pool"},
        "running": {**COUNT, "description": "claimed work with a heartbeat younger than LEASE_SECONDS"},
        "oldest_waiting_seconds": {"type": ["number", "null"], "description": "age of the oldest waiting message"},
        "workers_alive": {**COUNT,
                          "description": "worker processes whose heartbeat is younger than 3 HEARTBEAT_SECONDS"},
        "slots_alive": {**COUNT, "description": "their task slots (Celery concurrency)"},
        "slots_per_worker": {"type": "integer", "minimum": 1,
                             "description": "GPU_WORKER_SLOTS or CPU_WORKER_SLOTS: what one more replica brings"},
        "workers_needed": {**COUNT, "description": "ceil((waiting + running) / slots_per_worker): scale to this"},
    },
}
POOLS = {
    "type": "object", "required": ["measured_at", "pools"],
    "properties": {"measured_at": {"type": "string", "format": "date-time"},
                   "pools": {"type": "object", "required": ["cpu", "gpu"],
                             "properties": {"cpu": POOL, "gpu": POOL}}},
}

JOB_LIST = {
    "type": "object", "required": ["items", "page", "per_page", "total"],
    "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
                   "page": {"type": "integer", "minimum": 1},
                   "per_page": {"type": "integer", "minimum": 1, "maximum": 100},
                   "total": {"type": "integer", "minimum": 0}},
}

def submission(settings: Settings | None = None) -> dict[str, Any]:
    """The multipart form of a submission, its choices as `settings` offer them."""
    return {**SUBMISSION, "properties": {**SUBMISSION["properties"],
                                         **{spec.name: option_field(spec, settings) for spec in FIELDS}}}


SUBMISSION = {
    "type": "object", "additionalProperties": False,
    "description": "`file` or `upload` is required; any other field is refused (400 unknown_field), so a "
                   "misspelt option is never ignored",
    "properties": {
        "upload": UPLOAD_FIELD,
        "file": {"type": "string", "format": "binary", "description": "image or video; type decided by content"},
        "mask": {"type": "string", "format": "binary",
                 "description": "one mask image for every frame; white (255) = pixels to replace"},
        "masks": {"type": "string", "format": "binary",
                  "description": "one mask per frame: a mask video, or a ZIP of images in frame order"},
        "reference": {"type": "string", "format": "binary",
                      "description": "a colour image whose colours guide colorization (by matched regions)"},
        "keyframes": {"$ref": "#/components/schemas/KeyframeParts"},
        "operations": {"type": "string", "example": "inpaint",
                       "description": "comma list: colorize, inpaint; naming colorize colorizes (as colorize=yes). "
                                      "Without it: inpaint=1 and the colorize field"},
        "inpaint": {"type": "string", "enum": ["1", "0", "true", "false", "on"]},
    },
}


KEYFRAME_PARTS = {
    "type": "array", "maxItems": MAX_KEYFRAMES, "items": {"type": "string", "format": "binary"},
    "description": "videos only, with colorize: colour pictures of single frames, one part each, named by "
                   "the frame number (120.png, 000120.jpg; frames count from 0), or one ZIP of such files; any "
                   f"size (scaled to the frame), at most {MAX_KEYFRAMES}. Only their colour is used: the film "
                   "keeps its own lightness. Refused: a frame past the end (422), two for one frame (400), not "
                   "an image (415), greyscale (422), a picture that does not look like its frame (422); one "
                   "that matches only loosely is accepted with a note on the job",
}

def batch_form(settings: Settings | None = None) -> dict[str, Any]:
    """The multipart form of a batch: many files (or an operator's storage prefix) and the
    option fields of a submission, applied to every item."""
    return {"type": "object", "additionalProperties": False,
            "description": "every item is checked as a single submission would be before anything is stored; "
                           "one refused item refuses the batch (its name starts the message) and nothing is "
                           "kept. Any other field is refused (400 unknown_field)",
            "properties": {
                "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                          "description": f"the images and videos, one part each (at most {MAX_BATCH_ITEMS})"},
                "prefix": {"type": "string", "example": "incoming/box12/",
                           "description": "operators only, instead of files: every object stored under this "
                                          "prefix of the server's storage (not jobs/) becomes an item"},
                "operations": SUBMISSION["properties"]["operations"],
                "inpaint": SUBMISSION["properties"]["inpaint"],
                **{spec.name: option_field(spec, settings) for spec in FIELDS}}}


BATCH_ITEM = {
    "type": "object", "required": ["name", "job_id", "status", "error", "result_url", "job_url"],
    "properties": {"name": {"type": "string", "description": "the file's name, or its key under the prefix"},
                   "job_id": {"type": "string"},
                   "status": {"enum": ["queued", "running", "succeeded", "failed", "cancelled", "removed"],
                              "description": "its job's status; removed: the job was deleted on its own"},
                   "error": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["code", "message"],
                             "properties": {"code": {"type": "string"}, "message": NULLABLE_STR}}]},
                   "result_url": NULLABLE_STR, "job_url": NULLABLE_STR},
}
BATCH = {
    "type": "object",
    "required": ["id", "owner", "source", "prefix", "created_at", "total", "counts", "finished", "items", "links"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "owner": {"type": "string"},
        "source": {"enum": ["upload", "prefix"]}, "prefix": NULLABLE_STR, "created_at": NULLABLE_STR,
        "total": COUNT,
        "counts": {"type": "object", "description": "items by their job's status, counted when asked",
                   "required": ["queued", "running", "succeeded", "failed", "cancelled", "removed"],
                   "additionalProperties": COUNT},
        "finished": {"type": "boolean", "description": "every item's job has ended (or was removed)"},
        "items": {"type": "array", "items": BATCH_ITEM},
        "links": {"type": "object", "required": ["self"], "properties": {"self": {"type": "string"}}},
    },
}
BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"}}


def recolour_form(settings: Settings | None = None) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": {
        "keyframes": {"$ref": "#/components/schemas/KeyframeParts"},
        "drop_keyframes": {"type": "string", "example": "120,480",
                           "description": "frame numbers of the parent's keyframes to leave out (comma-separated); "
                                          "the parent's other keyframes carry over unless a new one replaces them"},
        **{spec.name: option_field(spec, settings) for spec in FIELDS if spec.name in COLOUR_OPTIONS}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _job_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}


HINTS_FORM = {"type": "object", "required": ["strokes"], "additionalProperties": False, "properties": {
    "strokes": {"type": "string", "format": "binary",
                "description": "an RGBA PNG of the picture's shape (any size): transparent except where painted; "
                               "each stroke's colour (its hue and chroma, not its lightness) spreads over the "
                               "region it was painted in, stopping at the picture's edges"}}}


def _hints_operation(summary: str, missing: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A hints preview: strokes in, the recoloured picture (PNG) out; nothing is stored."""
    return {"summary": summary,
            "description": "The picture's lightness is kept; only its colour changes, where the strokes reach "
                           "(areas far from every stroke are returned as they were). Nothing is stored: send "
                           "the result as a keyframe of a recolour, or keep it.",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": HINTS_FORM}}},
            "responses": {"200": {"description": "the recoloured picture",
                                  "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
                          "400": _error("no `strokes` part, or an unknown field"),
                          "404": _error(missing),
                          "413": _error("the strokes over the upload limit, or a picture too large to preview"),
                          "415": _error("strokes that are not an image"),
                          "422": _error("strokes without alpha, or not of the picture's shape"),
                          "503": _error("database or storage unavailable"),
                          **(extra or {})}}


def remask_form(settings: Settings | None = None) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": {
        "mask": SUBMISSION["properties"]["mask"], "masks": SUBMISSION["properties"]["masks"],
        **{spec.name: option_field(spec, settings) for spec in FIELDS if spec.name in MASK_OPTIONS}}}


FRAME_N = {"name": "n", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0},
           "description": "the frame, counting from 0 (a photograph has frame 0 only)"}
SIZE = {"name": "size", "in": "query", "required": False,
        "schema": {"type": "integer", "minimum": MIN_SIDE, "maximum": MAX_SIDE},
        "description": f"the longer side in pixels, at most (never enlarged); default {DEFAULT_SIDE}"}
FRAME_SPACE = {
    "type": "object", "required": ["kind", "width", "height", "frames", "fps", "frame_url"],
    "properties": {"kind": {"enum": ["image", "video"]}, "width": COUNT, "height": COUNT, "frames": COUNT,
                   "fps": {"type": ["number", "null"]},
                   "frame_url": {"type": "string", "description": "a frame's URL, {n} standing for its number"}},
}
TRACK_PREVIEW = {
    "type": "object", "required": ["frames", "notes"],
    "properties": {"frames": {"type": "array", "items": {
        "type": "object", "required": ["frame", "boxes"],
        "properties": {"frame": COUNT, "boxes": {
            "type": "array", "description": "one per box sent, in order; null where the box is not on this frame",
            "items": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["x", "y", "w", "h"],
                                                   "additionalProperties": {"type": "integer"}}]}}}}},
        "notes": {"type": "array", "items": {"type": "string"}}},
}
BAD_FRAME = {"400": _error("a bad size, format or kinds"), "404": _error("no such job or upload"),
             "422": _error("a frame past the end, or one ffmpeg could not decode"),
             "503": _error("database or storage unavailable")}


def painter_paths(base: str, parameters: list[dict[str, Any]], what: str,
                  settings: Settings | None = None) -> dict[str, Any]:
    """The mask painter's routes under a job or a staged upload: its frames and the previews."""
    return {
        f"{base}/frames": {
            "parameters": parameters,
            "get": {"summary": f"The {what}'s frames: their full size (a mask's size), count and URL",
                    "responses": {"200": {"description": "the frames", "content": {"application/json": {
                        "schema": FRAME_SPACE}}}, "404": _error("no such job or upload")}},
        },
        f"{base}/frames/{{n}}": {
            "parameters": [*parameters, FRAME_N, SIZE,
                           {"name": "format", "in": "query", "required": False,
                            "schema": {"enum": list(FORMATS)}, "description": "jpeg (default) or png"}],
            "get": {"summary": f"One frame of the {what}'s input, decoded on demand and scaled down",
                    "responses": {"200": {"description": "the frame", "content": {
                        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                        "image/png": {"schema": {"type": "string", "format": "binary"}}}}, **BAD_FRAME}},
        },
        f"{base}/frames/{{n}}/damage": {
            "parameters": [*parameters, FRAME_N, SIZE,
                           {"name": "kinds", "in": "query", "required": False, "schema": {"type": "string"},
                            "description": "comma list of dust, lines, scratches; default dust,lines for a "
                                           "video, scratches for a photograph"}],
            "get": {"summary": "The damage automatic detection finds on one frame: a PNG mask at the served "
                               "size, white = damage",
                    "description": "The pipeline's detectors on this frame (dust compares it with its "
                                   "neighbours). Scratches are found by the morphological filters here; the "
                                   "GPU worker's scratch net, used by jobs when installed, finds more.",
                    "responses": {"200": {"description": "the mask; X-Damage-Share: the share of pixels marked",
                                          "content": {"image/png": {"schema": {"type": "string",
                                                                               "format": "binary"}}}},
                                  **BAD_FRAME}},
        },
        f"{base}/track-preview": {
            "parameters": parameters,
            "post": {"summary": "Where the tracker takes each box on a few frames after the one it is drawn on",
                     "description": f"Boxes as the `boxes` option takes them; those with \"track\": true (or "
                                    "all, with track_all) are followed through at most TRACK_PREVIEW_FRAMES "
                                    f"({PREVIEW_SPAN} by default) frames "
                                    "from their first, by the same tracker a job runs.",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["boxes"],
                         "properties": {"boxes": {"type": "array", "items": {"type": "object"}},
                                        "track_all": {"type": "boolean"}}}}}},
                     "responses": {"200": {"description": "the boxes on a few frames", "content": {
                         "application/json": {"schema": TRACK_PREVIEW}}},
                         "400": _error("not JSON, or bad boxes"), "404": _error("no such job or upload"),
                         "422": _error("boxes outside the frames, or a photograph")}},
        },
    }


JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
FRAME = {"name": "frame", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0},
         "description": "a frame the job has a keyframe for"}
THUMBNAIL = {"name": "thumbnail", "in": "query", "required": False,
             "schema": {"type": "string", "enum": ["1"]}, "description": "1: the JPEG thumbnail instead"}
DOWNLOAD = {"name": "download", "in": "query", "required": False,
            "schema": {"type": "string", "enum": ["1"]}, "description": "1: as an attachment"}
FILE_RESPONSES = {
    "200": {"description": "the file (embedded storage)",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
    "302": {"description": "redirect to a short-lived presigned URL (S3 storage)"},
    "404": _error("no such job or file"),
}


LAST_EVENT_ID = {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"},
                 "description": "the id of the last event seen (EventSource sends it when it reconnects): the "
                                "stream carries on from there instead of repeating it"}
LIVE = {"type": "object", "required": ["frames_done", "frames_total", "fps", "eta_seconds"],
        "description": "pace of a video job from its done chunks (tintype.jobs.pace); nulls until one is done",
        "properties": {"frames_done": {"type": "integer", "minimum": 0},
                       "frames_total": {"type": "integer", "minimum": 0},
                       "fps": {"type": ["number", "null"], "description": "output frames per second"},
                       "eta_seconds": {"type": ["number", "null"], "description": "estimated seconds left"}}}
ENDED = {"type": "object", "required": ["id"],
         "properties": {"id": {"type": "string"}, "status": {"type": "string"}}}


def _event_stream(names: list[str], data: dict[str, Any]) -> dict[str, Any]:
    """An SSE response; the schema describes each event, its data a JSON document."""
    event = {"type": "object", "required": ["data"],
             "properties": {"event": {"enum": names}, "id": {"type": "string"}, "retry": {"type": "integer"},
                            "data": {"type": "string", "contentMediaType": "application/json",
                                     "contentSchema": data}}}
    return {"description": "an event stream (text/event-stream), one event per change",
            "content": {"text/event-stream": {"schema": event}}}


JOB_EVENTS = _event_stream(["job", "end", "gone"], {"anyOf": [
    {"allOf": [{"$ref": "#/components/schemas/Job"}, {"type": "object", "required": ["live"],
                                                       "properties": {"live": LIVE}}]}, ENDED]})
LIST_EVENTS = _event_stream(["job"], {"allOf": [{"$ref": "#/components/schemas/Job"}, {
    "type": "object", "required": ["event"], "properties": {"event": {"enum": ["job", "end"]}}}]})
STREAM_RULES = ("The stream starts with a `retry:` hint, sends a comment line as a heartbeat while quiet, "
                "and ends after EVENTS_STREAM_SECONDS (30 s by default); EventSource then reconnects with "
                "Last-Event-ID. A session cookie or an API key (Authorization: Bearer) both work.")
IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False,
               "schema": {"type": "string", "maxLength": 128},
               "description": "makes a submission safe to retry: the job keeps a fingerprint of the request "
                              "(the input's sha256, the parsed options and every other file), and a later "
                              "request with the same key and the same fingerprint gets that job back (200). "
                              "The same key with a different request (another file, other options or parts) "
                              "is refused with 422 idempotency_key_reused; use a new key for a new "
                              "submission. Keys are per owner."}
STREAMS_BUSY = _error("too many live streams are open on this web process (EVENTS_MAX_STREAMS): poll "
                      "instead, or retry after Retry-After")
ACCESS_RESPONSES = {
    "401": _error("AUTH_REQUIRED is on and no valid, unrevoked API key was sent"),
    "403": _error("a browser request without its page's CSRF token, or an operator-only filter"),
    "429": _error("over the key's request rate or the owner's quota; see Retry-After"),
}
OPEN = ("/api/v1/health", "/api/v1/openapi.json")


def openapi_document(settings: Settings | None = None) -> dict[str, Any]:
    """The document; with `settings`, as this server serves it (only usable models offered)."""
    document = _document(settings)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            if path in OPEN:
                operation["security"] = []
            else:
                operation["responses"] = {**ACCESS_RESPONSES, **operation["responses"]}  # a route's own say wins
    return document


def _document(settings: Settings | None) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "tintype", "version": "1.0.0",
                 "description": "Colorize and inpaint historical photographs and film."},
        "paths": {
            "/api/v1/jobs": {
                "post": {
                    "summary": "Submit an image or video",
                    "requestBody": {"required": True,
                                    "content": {"multipart/form-data": {"schema": submission(settings)}}},
                    "parameters": [IDEMPOTENCY],
                    "responses": {"202": _job_response("accepted and queued"),
                                  "200": _job_response("the job an earlier request with this Idempotency-Key made"),
                                  "400": _error("a missing, invalid or unknown field (unknown_field names it)"),
                                  "404": _error("upload=<id> names no completed upload of the caller"),
                                  "413": _error("upload, image or video over a limit"),
                                  "415": _error("not media, or an unsupported format or codec"),
                                  "422": _error("corrupt media (including a video cut short), a mask that does "
                                                "not fit, a keyframe past the end, greyscale or unlike its "
                                                "frame, or an Idempotency-Key reused for a different request"),
                                  "503": _error("database or storage unavailable")},
                },
                "get": {
                    "summary": "List jobs, newest first",
                    "parameters": [
                        {"name": "status", "in": "query", "required": False, "schema": {"type": "string"},
                         "description": "comma list of queued, running, succeeded, failed, cancelled"},
                        {"name": "kind", "in": "query", "required": False, "schema": {"enum": ["image", "video"]}},
                        {"name": "owner", "in": "query", "required": False, "schema": {"type": "string"},
                         "description": "one owner's jobs (others' for operators only)"},
                        {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}},
                        {"name": "per_page", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": 100}}],
                    "responses": {"200": {"description": "a page of jobs", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/JobList"}}}},
                        "400": _error("bad filter or page")},
                },
            },
            "/api/v1/jobs/events": {
                "get": {
                    "summary": "Server-Sent Events: the caller's jobs as they appear, change and end",
                    "description": "Each `job` event's data is the job as GET /jobs/{job_id} shows it, plus "
                                   "`event` (`job`, or `end` once it has ended); its id is a cursor "
                                   "(milliseconds). " + STREAM_RULES,
                    "parameters": [LAST_EVENT_ID,
                                   {"name": "owner", "in": "query", "required": False,
                                    "schema": {"type": "string"},
                                    "description": "one owner's jobs (others' for operators only)"}],
                    "responses": {"200": LIST_EVENTS,
                                  "503": STREAMS_BUSY},
                },
            },
            "/api/v1/jobs/{job_id}/events": {
                "parameters": [JOB_ID],
                "get": {
                    "summary": "Server-Sent Events: one job's status, stage, chunks, frames/s and time left",
                    "description": "A `job` event (data: the job as GET /jobs/{job_id} shows it, plus `live`: "
                                   "frames_done, frames_total, fps and eta_seconds, null until a chunk is done) "
                                   "whenever the job changes; `end` after a finished job's last state, and "
                                   "`gone` if it is deleted. " + STREAM_RULES,
                    "parameters": [LAST_EVENT_ID],
                    "responses": {"200": JOB_EVENTS, "404": _error("no such job"),
                                  "503": STREAMS_BUSY},
                },
            },
            "/api/v1/jobs/{job_id}": {
                "parameters": [JOB_ID],
                "get": {"summary": "A job: status, stage, progress, timings, input facts, result link",
                        "responses": {"200": _job_response("the job"), "404": _error("no such job")}},
                "delete": {"summary": "Cancel a queued or running job; delete a finished one",
                           "description": "A queued or running job is cancelled: its work stops and its work "
                                          "objects are removed; the job stays, `cancelled` (200). A job that has "
                                          "ended (succeeded, failed, cancelled) is deleted: every object it "
                                          "stored and its row (204); afterwards it is 404.",
                           "responses": {"200": _job_response("cancelled"),
                                         "204": {"description": "the finished job and its files were deleted"},
                                         "404": _error("no such job")}},
            },
            "/api/v1/jobs/{job_id}/result": {
                "parameters": [JOB_ID, DOWNLOAD],
                "get": {"summary": "The result file",
                        "responses": {**FILE_RESPONSES, "409": _error("the job has not succeeded")}},
            },
            "/api/v1/jobs/{job_id}/input": {
                "parameters": [JOB_ID, DOWNLOAD],
                "get": {"summary": "The uploaded file", "responses": FILE_RESPONSES},
            },
            "/api/v1/jobs/{job_id}/compare": {
                "parameters": [JOB_ID],
                "get": {"summary": "Input and result side by side (video jobs)", "responses": FILE_RESPONSES},
            },
            "/api/v1/jobs/{job_id}/masks": {
                "parameters": [JOB_ID, DOWNLOAD],
                "get": {"summary": "The masks an inpainting job filled (lossless MKV for video, PNG for images)",
                        "responses": FILE_RESPONSES},
            },
            "/api/v1/jobs/{job_id}/outputs/{name}": {
                "parameters": [JOB_ID, {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                                        "description": "a name from the job's outputs"}, DOWNLOAD],
                "get": {"summary": "A file made beside the result (named in the job's outputs)",
                        "responses": FILE_RESPONSES},
            },
            "/api/v1/jobs/{job_id}/masks/poster": {
                "parameters": [JOB_ID],
                "get": {"summary": "The middle frame with the filled mask shown in red", "responses": FILE_RESPONSES},
            },
            "/api/v1/jobs/{job_id}/masks/frames/{n}": {
                "parameters": [JOB_ID, FRAME_N, SIZE],
                "get": {"summary": "What inpainting filled on one frame: a PNG mask at the served size, white = filled",
                        "description": "Decoded on demand from the kept masks (a film's lossless mask video, which "
                                       "browsers cannot play; a photograph's PNG is frame 0), scaled like the "
                                       "painter's frames. Cacheable: a finished job's masks never change.",
                        "responses": {"200": {"description": "the mask", "content": {
                            "image/png": {"schema": {"type": "string", "format": "binary"}}}},
                            "400": _error("a bad size"),
                            "404": _error("no such job, or the job kept no masks"),
                            "422": _error("a frame past the end, or one ffmpeg could not decode"),
                            "503": _error("database or storage unavailable")}},
            },
            "/api/v1/jobs/{job_id}/keyframes": {
                "parameters": [JOB_ID],
                "get": {"summary": "The job's keyframes: frame, source (user, auto, reference) and links",
                        "responses": {"200": {"description": "the keyframes, by frame", "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/KeyframeList"}}}},
                            "404": _error("no such job")}},
            },
            "/api/v1/jobs/{job_id}/keyframes/{frame}": {
                "parameters": [JOB_ID, FRAME, THUMBNAIL, DOWNLOAD],
                "get": {"summary": "One keyframe: RGB PNG at the frame's size, upright", "responses": FILE_RESPONSES},
            },
            "/api/v1/jobs/{job_id}/keyframes/{frame}/thumbnail": {
                "parameters": [JOB_ID, FRAME],
                "get": {"summary": "One keyframe's JPEG thumbnail", "responses": FILE_RESPONSES},
            },
            "/api/v1/jobs/{job_id}/keyframes/{frame}/hints": {
                "parameters": [JOB_ID, FRAME],
                "post": _hints_operation("The keyframe recoloured by a few colour strokes (a preview)",
                                         "no such job, or no keyframe at that frame"),
            },
            "/api/v1/jobs/{job_id}/result/hints": {
                "parameters": [JOB_ID],
                "post": _hints_operation("A photograph's result recoloured by a few colour strokes (a preview)",
                                         "no such job", {
                                             "400": _error("a film (its hints go on its keyframes), no "
                                                           "`strokes` part, or an unknown field"),
                                             "409": _error("the job has not succeeded")}),
            },
            "/api/v1/jobs/{job_id}/recolour": {
                "parameters": [JOB_ID],
                "post": {
                    "summary": "Colour a succeeded job again, as a new job, with new keyframes or colour options",
                    "description": "The new job reuses the parent's stored input, facts and frame times (no "
                                   "upload), only colorizes, keeps the parent's other options and records "
                                   "`recolour_of`. A parent that inpainted is not inpainted again: the new job "
                                   "colours its result. Keyframes are checked as for a new submission; the "
                                   "parent's own keyframes carry over unless replaced or named in "
                                   "`drop_keyframes`; quotas apply.",
                    "requestBody": {"required": False,
                                    "content": {"multipart/form-data": {"schema": recolour_form(settings)}}},
                    "parameters": [IDEMPOTENCY],
                    "responses": {"202": _job_response("the new job, accepted and queued (Location: its URL)"),
                                  "200": _job_response("the job an earlier request with this Idempotency-Key made"),
                                  "400": _error("a bad keyframe name, count or field, an unknown field, an "
                                                "option that is not a colour option, or drop_keyframes naming "
                                                "no keyframe of the job"),
                                  "404": _error("no such job"),
                                  "409": _error("the job has not succeeded, or its files are gone"),
                                  "413": _error("a keyframe over a limit"),
                                  "415": _error("a keyframe that is not an image"),
                                  "422": _error("a keyframe past the end, greyscale, or unlike its frame, or an "
                                                "Idempotency-Key reused for a different request"),
                                  "503": _error("database or storage unavailable")},
                },
            },
            **painter_paths("/api/v1/jobs/{job_id}", [JOB_ID], "job", settings),
            **painter_paths("/api/v1/uploads/{upload_id}", [UPLOAD_ID], "completed upload", settings),
            "/api/v1/jobs/{job_id}/inpaint": {
                "parameters": [JOB_ID],
                "post": {
                    "summary": "Inpaint the job's stored input again, as a new job, with new masks or boxes",
                    "description": "What the mask painter submits. The new job takes the parent's stored input, "
                                   "facts and frame times (nothing is uploaded or probed again) and its options "
                                   "and operations, with inpainting on and only the mask sources sent here (the "
                                   "parent's boxes, detection and keyframes are not kept). The masks are checked "
                                   "as for a new submission; quotas apply.",
                    "requestBody": {"required": True,
                                    "content": {"multipart/form-data": {"schema": remask_form(settings)}}},
                    "responses": {"202": _job_response("the new job, accepted and queued (Location: its URL)"),
                                  "400": _error("no mask source, a bad or unknown field, or an option that is "
                                                "not a mask option"),
                                  "404": _error("no such job"),
                                  "409": _error("the job's input is gone"),
                                  "413": _error("a mask over a limit"),
                                  "415": _error("a mask that is not an image, video or ZIP"),
                                  "422": _error("masks that do not fit the frames (size, count), boxes outside "
                                                "them, or a mask covering every pixel")},
                },
            },
            "/api/v1/jobs/{job_id}/preview": {
                "parameters": [JOB_ID],
                "get": {"summary": "A poster frame of the input video", "responses": FILE_RESPONSES},
            },
            "/api/v1/batches": {
                "post": {
                    "summary": "Submit many files (or an operator's storage prefix) as one batch, one job each",
                    "requestBody": {"required": True,
                                    "content": {"multipart/form-data": {"schema": batch_form(settings)}}},
                    "responses": {"202": {"description": "accepted: the batch and its queued jobs (Location: "
                                                         "its URL)", "content": {"application/json": {
                                              "schema": {"$ref": "#/components/schemas/Batch"}}}},
                                  "400": _error("no files, files and a prefix together, a bad or unknown field, "
                                                "a reserved or empty prefix"),
                                  "413": _error("an item over a limit, or more items than a batch takes"),
                                  "415": _error("an item that is not media, or an unsupported format"),
                                  "422": _error("a corrupt item"),
                                  "503": _error("database or storage unavailable")},
                },
            },
            "/api/v1/batches/{batch_id}": {
                "parameters": [BATCH_ID],
                "get": {"summary": "A batch: its items' jobs counted by status, and each item's job and result",
                        "responses": {"200": {"description": "the batch", "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Batch"}}}},
                            "404": _error("no such batch")}},
            },
            **UPLOAD_PATHS,
            "/api/v1/pools": {
                "get": {"summary": "Operators: work waiting and running per worker pool, and the workers needed",
                        "description": "The scaling signal (docs/metrics.md): waiting from the broker and the "
                                       "database, running from the database's heartbeats, never the queue "
                                       "length alone. KEDA's metrics-api scaler reads "
                                       "`pools.gpu.workers_needed`.",
                        "responses": {"200": {"description": "the pools", "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Pools"}}}},
                            "503": _error("database unavailable")}},
            },
            "/api/v1/health": {
                "get": {"summary": "Liveness with a database round trip",
                        "responses": {"200": {"description": "ok", "content": {"application/json": {
                            "schema": {"type": "object", "properties": {"status": {"const": "ok"}}}}}},
                            "503": _error("database unavailable")}},
            },
            "/api/v1/openapi.json": {
                "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}}}}},
            },
        },
        # An installation without keys (the embedded default) accepts requests without one.
        "security": [{"bearer": []}, {}],
        "components": {"schemas": {"Job": JOB, "JobList": JOB_LIST, "Error": ERROR, "KeyframeList": KEYFRAME_LIST,
                                   "KeyframeParts": KEYFRAME_PARTS, "Pools": POOLS, "Batch": BATCH,
                                   "Upload": UPLOAD},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "an API key from `tintype keys create`"}}},
    }
