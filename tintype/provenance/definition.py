"""The C2PA manifest definition of a result, built from the job alone (no c2pa import).

C2PA's actions say what was done (opened the input, colour added by a trained model,
areas filled, re-encoded, marked); a tintype assertion keeps the details an archivist asks
for: the options, which masks were filled and the models with their sha256. The same
action list is what the job's JSON shows, so the API and the manifest cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from tintype.jobs.options import JobOptions

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_COMPOSITE = IPTC + "compositeWithTrainedAlgorithmicMedia"  # colour predicted by a trained model
ALGORITHMIC = IPTC + "algorithmicMedia"  # pixels made by an algorithm with no training data (a fill)
ASSERTION = "org.tintype.restoration"
INPUT_LABEL = "input"  # the parent ingredient's id, which the `c2pa.opened` action names
TRAINED_INPAINTERS = frozenset({"torchscript"})  # the other fills are classical algorithms


@dataclass(frozen=True)
class Facts:
    """What the manifest is made from: the job's choices and what the worker used."""

    kind: str  # "image" or "video"
    options: JobOptions
    input_name: str
    input_sha256: str
    has_mask: bool = False  # an uploaded mask (image or video)
    has_reference: bool = False
    models: list[dict[str, Any]] = field(default_factory=list)  # name, task, sha256 (None: no weights)


def facts_of(job: Any, options: JobOptions, models: list[dict[str, Any]]) -> Facts:
    """The Facts of a job row, with the models the worker used."""
    return Facts(kind=job.kind, options=options, input_name=job.input_name, input_sha256=job.input_sha256,
                 has_mask=bool(job.has_mask), has_reference=bool(job.has_reference), models=models)


def tintype_version() -> str:
    """The installed package's version; "unknown" for a source tree never installed."""
    try:
        return metadata.version("tintype")
    except metadata.PackageNotFoundError:
        return "unknown"


def mask_sources(options: JobOptions, has_mask: bool) -> list[dict[str, Any]]:
    """The kinds of mask an inpainting job filled: uploaded, boxes, detected damage."""
    kinds: list[dict[str, Any]] = []
    if has_mask:
        kinds.append({"kind": "uploaded mask"})
    if options.boxes:
        kinds.append({"kind": "boxes", "count": len(options.boxes), "tracked": options.tracks_boxes})
    if options.detect_damage:
        kinds.append({"kind": "detected damage", "types": list(options.detect_damage)})
    return kinds


def actions(kind: str, options: JobOptions, has_mask: bool, master: str | None = None) -> list[dict[str, Any]]:
    """The C2PA actions of a result, in the order they happened (without the agent). For
    an archival master (`master` says what it is) the last step is its own encoding; it
    never carries the visible mark."""
    done: list[dict[str, Any]] = [{"action": "c2pa.opened", "parameters": {"ingredientIds": [INPUT_LABEL]}}]
    if options.inpaint:
        source = TRAINED_COMPOSITE if options.inpaint_model in TRAINED_INPAINTERS else ALGORITHMIC
        masks = ", ".join(m["kind"] for m in mask_sources(options, has_mask)) or "none"
        done.append({"action": "c2pa.edited", "digitalSourceType": source,
                     "description": f"inpainted: masked areas filled by {options.inpaint_model} (masks: {masks})"})
    if options.colorize:
        done.append({"action": "c2pa.color_adjustments", "digitalSourceType": TRAINED_COMPOSITE,
                     "description": f"colorized: colour predicted from the lightness by {options.colorize_model}"})
    if master is not None:
        return done + [{"action": "c2pa.transcoded", "description": f"kept as an archival master: {master}"}]
    if kind == "video":
        done.append({"action": "c2pa.transcoded", "description": "delivered as H.264 MP4"})
    if options.visible_mark:
        done.append({"action": "c2pa.edited", "description": "visible mark drawn in the bottom-left corner"})
    return done


def summary(kind: str, options: JobOptions, has_mask: bool) -> list[dict[str, str]]:
    """The actions as the job's JSON shows them: name and what it means."""
    return [{"action": a["action"], "description": a.get("description", "opened the input")}
            for a in actions(kind, options, has_mask)]


def build(facts: Facts, title: str, master: str | None = None) -> dict[str, Any]:
    """The manifest definition (c2pa Builder JSON) of the result named `title` (or of the
    archival master `master` describes)."""
    version = tintype_version()
    agent = {"name": "tintype", "version": version}
    steps = [{**a, "softwareAgent": agent} for a in actions(facts.kind, facts.options, facts.has_mask, master)]
    details = {"tintype_version": version, "operations": list(facts.options.operations),
               "options": facts.options.to_json(), "models": facts.models,
               "masks": mask_sources(facts.options, facts.has_mask) if facts.options.inpaint else [],
               "colour_reference": facts.has_reference,
               "input": {"name": facts.input_name, "sha256": facts.input_sha256}}
    return {"claim_generator_info": [agent], "title": title,
            "assertions": [{"label": "c2pa.actions", "data": {"actions": steps}},
                           {"label": ASSERTION, "data": details}]}


def input_ingredient(facts: Facts, content_type: str) -> dict[str, Any]:
    """The parent ingredient declared by name when its bytes cannot be given to c2pa."""
    return {"title": facts.input_name, "format": content_type, "relationship": "parentOf",
            "label": INPUT_LABEL}
