"""The OpenAPI description of staged uploads (tintype.web.staged), merged into the
document by tintype.web.openapi."""

from __future__ import annotations

from typing import Any

NULLABLE_STR = {"type": ["string", "null"]}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _upload_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Upload"}}}}


UPLOAD_FORM = {
    "type": "object", "required": ["filename", "size"], "additionalProperties": False,
    "properties": {
        "filename": {"type": "string", "maxLength": 255, "example": "reel-3.mp4",
                     "description": "the file's name (a plain name: no '/', '\\\\', '..')"},
        "size": {"type": "integer", "minimum": 1, "description": "the file's size in bytes (MAX_UPLOAD_BYTES at most)"},
        "content_type": {"type": "string", "example": "video/mp4"},
        "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$",
                   "description": "optional: the file's SHA-256, checked when the upload is completed"},
    },
}
PART_URL = {"type": "object", "required": ["number", "size", "url"],
            "properties": {"number": {"type": "integer", "minimum": 1}, "size": {"type": "integer", "minimum": 1},
                           "url": {"type": "string", "description": "PUT the part's bytes here"}}}
UPLOAD = {
    "type": "object",
    "required": ["id", "owner", "status", "filename", "size", "content_type", "sha256", "transport", "part_size",
                 "parts", "received", "missing", "part_urls", "created_at", "expires_at", "links"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "owner": {"type": "string"},
        "status": {"enum": ["open", "completing", "completed"],
                   "description": "open: parts are being sent; completing: being assembled (a moment); completed: "
                                  "assembled and checked, ready for a job"},
        "filename": {"type": "string"}, "size": {"type": "integer"}, "content_type": {"type": "string"},
        "sha256": {**NULLABLE_STR, "description": "the assembled file's SHA-256, once completed"},
        "transport": {"enum": ["s3", "app"],
                      "description": "s3: PUT each part to its presigned URL on the S3 storage (a multipart "
                                     "upload; the bucket allows it by CORS); app: PUT each part to this API "
                                     "(browsers send their page's X-CSRF-Token)"},
        "part_size": {"type": "integer", "description": "every part's size but the last, which holds the rest"},
        "parts": {"type": "integer", "minimum": 1, "description": "how many parts the file is sent in"},
        "received": {"type": "array", "items": {"type": "integer"}, "description": "parts the storage holds"},
        "missing": {"type": "array", "items": {"type": "integer"}, "description": "parts still to send"},
        "part_urls": {"type": "array", "items": PART_URL,
                      "description": "where to PUT each missing part (empty once completed); presigned URLs "
                                     "last until the upload expires"},
        "created_at": {"type": "string"},
        "expires_at": {"type": "string", "description": "an upload no job was made of by then is removed "
                                                        "(UPLOAD_EXPIRY_HOURS)"},
        "links": {"type": "object", "required": ["self", "complete"],
                  "properties": {"self": {"type": "string"}, "complete": {"type": "string"}}},
    },
}
UPLOAD_ID = {"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string"}}
COMPLETE_FORM = {
    "type": "object", "properties": {"parts": {
        "type": "array", "items": {"type": "object", "required": ["number", "etag"],
                                   "properties": {"number": {"type": "integer"}, "etag": {"type": "string"}}},
        "description": "optional, s3 transport: the ETag S3 answered for each part, checked against the parts "
                       "it holds"}}}
UPLOAD_FIELD = {"type": "string", "pattern": "^[0-9a-f]{32}$",
                "description": "instead of `file`: the id of a completed staged upload (POST /api/v1/uploads); "
                               "the job takes its file (no second upload) and the upload is used up"}

UPLOAD_PATHS: dict[str, Any] = {
    "/api/v1/uploads": {
        "post": {
            "summary": "Start a staged upload: a file sent in parts, resumable, that a job is made of later",
            "description": "Send every part (part_urls), complete the upload, then POST /api/v1/jobs with "
                           "upload=<id>. A client that lost its place GETs the upload and sends only the "
                           "missing parts.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": UPLOAD_FORM}}},
            "responses": {"201": _upload_response("the upload, and where to send each part (Location: its URL)"),
                          "400": _error("a missing, invalid or unknown field"),
                          "413": _error("the file is over MAX_UPLOAD_BYTES"),
                          "429": _error("the owner's daily bytes quota (staged uploads count) or UPLOADS_MAX_OPEN "
                                        "unfinished or unused uploads; see Retry-After where it is given"),
                          "503": _error("database or storage unavailable")},
        },
    },
    "/api/v1/uploads/{upload_id}": {
        "parameters": [UPLOAD_ID],
        "get": {"summary": "A staged upload: the parts the storage holds and where to send the rest",
                "responses": {"200": _upload_response("the upload"), "404": _error("no such upload"),
                              "503": _error("database or storage unavailable")}},
        "delete": {"summary": "Cancel a staged upload: the multipart upload is aborted, every part removed",
                   "responses": {"204": {"description": "cancelled"}, "404": _error("no such upload"),
                                 "409": _error("a complete is assembling it (upload_completing), or it changed "
                                               "meanwhile; ask again"),
                                 "503": _error("database or storage unavailable")}},
    },
    "/api/v1/uploads/{upload_id}/parts/{number}": {
        "parameters": [UPLOAD_ID, {"name": "number", "in": "path", "required": True,
                                   "schema": {"type": "integer", "minimum": 1}}],
        "put": {"summary": "One part's bytes (the app transport); a part sent again replaces it",
                "requestBody": {"required": True, "content": {"application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"}}}},
                "responses": {"204": {"description": "stored"},
                              "400": _error("a part number outside 1..parts, or not the part's exact size"),
                              "404": _error("no such upload"),
                              "409": _error("the upload is complete, or its parts go to S3"),
                              "503": _error("database or storage unavailable")}},
    },
    "/api/v1/uploads/{upload_id}/complete": {
        "parameters": [UPLOAD_ID],
        "post": {"summary": "Assemble the parts and check the file's size and SHA-256",
                 "requestBody": {"required": False, "content": {"application/json": {"schema": COMPLETE_FORM}}},
                 "responses": {"200": _upload_response("completed (again, if it already was)"),
                               "400": _error("a malformed parts list"),
                               "404": _error("no such upload"),
                               "409": _error("parts are missing or mis-sized (parts_missing names them; the upload "
                                             "stays open), an ETag is not the stored part's, or another complete "
                                             "is assembling it (upload_completing: ask again shortly)"),
                               "422": _error("the file's size or SHA-256 is not what was announced; the upload is "
                                             "removed"),
                               "503": _error("database or storage unavailable")}},
    },
}
