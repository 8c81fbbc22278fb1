"""Every option a job takes, declared once: its type, bounds, default, help and form label.

The declarations (`FIELDS`) are the single source for the parser below, the OpenAPI
schema of a submission, the web form's inputs and the `tintype restore` flags, so adding
an option is one `Field` here plus its use in a worker. Defaults that come from the
settings are resolved when the job is submitted and stored with it (`JobOptions.to_json`),
so a job runs with what it was accepted with even if the settings change while it waits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from tintype.jobs.catalogue import COLORIZE_MODELS, INPAINT_MODELS, missing_setting
from tintype.jobs.mask_intake import MaskError, parse_boxes, parse_damage_kinds
from tintype.media.inpaint.damage import KINDS as DAMAGE_KINDS
from tintype.settings import Settings

OPERATIONS = ("inpaint", "colorize")  # in the order they run
TRUE_WORDS, FALSE_WORDS = ("1", "true", "on", "yes"), ("0", "false", "off", "no", "")
AUTO, YES, NO = "auto", "yes", "no"  # colorize: decided from the input's colour, or as asked
GRAIN_OFF, GRAIN_KEEP = "off", "keep"  # grain: restored as it is, or taken off and put back (media.grain)


class OptionError(ValueError):
    """A job option is malformed or out of bounds; `code` is the API's error code."""

    def __init__(self, message: str, code: str = "bad_option") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Field:
    """One job option: how it is parsed and bounded, and how people are shown it."""

    name: str
    kind: str  # int, float, choice, flag, boxes, kinds or tristate (auto / yes / no)
    help: str
    label: str
    default: Any = None
    setting: str | None = None  # the Settings attribute that supplies the default
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    choice_labels: Mapping[str, str] = field(default_factory=dict)  # the form's wording, in its order
    group: str = "options"  # the form's section: "operations", "remove" or "options"
    flags: tuple[str, ...] = ()  # extra CLI spellings beside --name-with-dashes

    @property
    def cli_flags(self) -> tuple[str, ...]:
        return ("--" + self.name.replace("_", "-"), *self.flags)

    def default_for(self, settings: Settings) -> Any:
        return getattr(settings, self.setting) if self.setting else self.default

    def choices_for(self, settings: Settings) -> tuple[str, ...]:
        """The choices these settings make usable, in the form's order: a model that is an
        operator's own file is offered only once its setting names the file."""
        ordered = [c for c in self.choice_labels if c in self.choices] or list(self.choices)
        return tuple(c for c in ordered if missing_setting(c, settings) is None)


FIELDS: tuple[Field, ...] = (
    Field("colorize", "tristate", "colorize the input: auto colorizes a black-and-white input and keeps one "
          "that already has colour (sepia, toned, tinted, colour film; see tintype.media.tone), yes always "
          "colorizes (recolours a colour input), no never does", "Colorize", default=AUTO,
          choices=(AUTO, YES, NO), choice_labels={AUTO: "if black and white (keep colour that is there)",
                                                  YES: "yes, even a picture that has colour", NO: "no"},
          group="operations", flags=("--no-colorize",)),
    Field("render_size", "int", "short side, in pixels, of the picture the colorization model sees; "
          "never above the input's own short side", "Render size (short side the model sees)",
          setting="render_size", low=64, high=2048, step=1),
    Field("saturation", "float", "scale of the predicted colour; 1 = as predicted, 0 = grey",
          "Saturation", default=1.0, low=0.0, high=3.0, step=0.1),
    Field("temporal_strength", "float", "flow-guided smoothing of a colorized video's colour over time; "
          "0 = off, 1 = full", "Temporal smoothing of colour (0 = off)", setting="temporal_strength",
          low=0.0, high=1.0, step=0.1),
    Field("colour_mode", "choice", "how a video is coloured: keyframes (one coloured frame per shot, yours "
          "or the model's, carried through the shot along the motion, so its colour holds still) or "
          "per-frame (the model colours every frame on its own)", "Colour of a film",
          setting="colour_mode", choices=("keyframes", "per-frame"),
          choice_labels={"keyframes": "Keyframes carried through each shot", "per-frame": "Every frame on its own"}),
    Field("colorize_model", "choice", "the colorization model", "Colorization model", setting="colorize_model",
          choices=tuple(sorted(COLORIZE_MODELS))),
    Field("output_format", "choice", "file format of a photograph's result", "Image output", default="png",
          choices=("png", "jpeg"), choice_labels={"png": "PNG", "jpeg": "JPEG"}),
    Field("photo_master", "choice", "also keep a 16-bit master of a photograph beside the result: the "
          "input's own lightness at its own depth with the result's colour (png16 or tiff16; none = no master)",
          "16-bit master of a photograph", default="none", choices=("none", "png16", "tiff16"),
          choice_labels={"none": "none", "png16": "16-bit PNG", "tiff16": "16-bit TIFF"}),
    Field("sequence_fps", "float", "frame rate of an image sequence (a ZIP of numbered frames, or a folder or "
          "pattern given to tintype restore); a video keeps its own", "Frame rate of an image sequence",
          default=24.0, low=1.0, high=240.0, step=1.0),
    Field("master", "choice", "an archival master of a video beside the MP4, at the input's own bit depth "
          "(its luminance untouched where the job changed none), with its audio copied as it is, its "
          "timecode and colour tags: ffv1 (FFV1 in Matroska, 10 bits or the input's depth) or prores "
          "(ProRes 422 HQ in QuickTime, 10-bit)", "Archival master (video)", default="none",
          choices=("none", "ffv1", "prores"),
          choice_labels={"none": "none", "ffv1": "FFV1, Matroska (.mkv)", "prores": "ProRes 422 HQ, QuickTime (.mov)"}),
    Field("inpaint_model", "choice", "how masked pixels are filled: flow borrows them from other frames "
          "(PatchMatch for what no frame shows), the others fill each frame on its own",
          "Inpainting method", setting="inpaint_model", choices=tuple(sorted(INPAINT_MODELS)),
          choice_labels={"flow": "Flow-guided (video) / PatchMatch (photo)", "patchmatch": "PatchMatch, frame by frame",
                         "telea": "Telea (fast)", "ns": "Navier-Stokes (fast)",
                         "torchscript": "TorchScript model (operator-installed)"}),
    Field("boxes", "boxes", 'JSON list of boxes to remove, {"x","y","w","h"} with optional "first"/"last" frame '
          'and "track": true to follow that box with the tracker',
          'Boxes (JSON, e.g. [{"x": 10, "y": 20, "w": 64, "h": 32}]; optional "first"/"last" frame)',
          default=(), group="remove"),
    Field("track_boxes", "flag", "follow each box from its first frame with a tracker",
          "Follow each box from its first frame (tracker)", default=False, group="remove", flags=("--track",)),
    Field("detect_damage", "kinds", "find damage automatically: comma list of dust, lines (video), "
          "scratches (photographs)", "Find damage automatically", default=(), choices=DAMAGE_KINDS,
          choice_labels={"": "no", "dust,lines": "film: dust and line scratches", "dust": "film: dust and dirt",
                         "lines": "film: vertical line scratches", "scratches": "photograph: scratches and creases"},
          group="remove"),
    Field("deinterlace", "choice", "interlaced video: auto deinterlaces a video detected as interlaced "
          "(stream flag checked with idet) at its frame rate, off never does, frame and field always do "
          "(bwdif), field giving one frame per field at twice the rate", "Deinterlace", default=AUTO,
          choices=(AUTO, "off", "frame", "field"),
          choice_labels={AUTO: "if interlaced, at frame rate", "off": "no", "frame": "yes, at frame rate",
                         "field": "yes, one frame per field (twice the rate)"}),
    Field("field_order", "choice", "which field comes first when deinterlacing: auto takes the detected "
          "order (a video whose order cannot be told is refused until you give tff or bff)",
          "Field order", default=AUTO, choices=(AUTO, "tff", "bff"),
          choice_labels={AUTO: "as detected", "tff": "top field first", "bff": "bottom field first"}),
    Field("master_interlaced", "flag", "keep the archival master interlaced: the field-rate frames are "
          "woven back into the input's frames and field order (needs field-rate deinterlacing, which auto "
          "then chooses)", "Keep the master interlaced", default=False),
    Field("grain", "choice", "film grain: keep takes it off the picture before restoring (a short temporal "
          "denoise), restores the clean picture and puts the original grain back, with matching grain "
          "synthesised inside filled holes; off restores the grainy picture as it is",
          "Film grain", default=GRAIN_OFF, choices=(GRAIN_OFF, GRAIN_KEEP),
          choice_labels={GRAIN_OFF: "restore as it is", GRAIN_KEEP: "keep: restore under it, put it back"}),
    Field("mask_dilation", "int", "grow every mask by this many pixels, so a fill does not keep the "
          "halo around a scratch", "Grow masks by (pixels)", setting="mask_dilation", low=0, high=64, step=1,
          group="remove"),
    Field("visible_mark", "flag", "draw a small visible 'AI-coloured / restored by tintype' mark in the "
          "bottom-left corner of the result (the C2PA manifest is there either way)",
          "Visible mark on the result (AI-coloured / restored by tintype)", default=False),
)


@dataclass(frozen=True)
class JobOptions:
    """What a job runs with, every default resolved; stored whole on the job row."""

    operations: tuple[str, ...]
    render_size: int
    saturation: float
    temporal_strength: float
    colour_mode: str
    colorize_model: str
    output_format: str
    inpaint_model: str
    mask_dilation: int
    master: str = "none"
    boxes: tuple[dict[str, int], ...] = ()
    track_boxes: bool = False
    detect_damage: tuple[str, ...] = ()
    sequence_fps: float = 24.0  # only read when the input is an image sequence (media.sequence)
    photo_master: str = "none"  # none, png16 or tiff16 (tintype.media.master16)
    visible_mark: bool = False
    colorize_choice: str = YES  # what was asked (`colorize`); `operations` holds what was decided
    deinterlace: str = AUTO
    field_order: str = AUTO
    master_interlaced: bool = False
    grain: str = GRAIN_OFF

    @property
    def keeps_grain(self) -> bool:
        """Restoration runs under the film's grain, which is put back afterwards."""
        return self.grain == GRAIN_KEEP

    @property
    def colorize_undecided(self) -> bool:
        """`colorize=auto` before intake measured the input (`tintype.jobs.colour_input`)."""
        return self.colorize_choice == AUTO and not self.colorize

    @property
    def colorize(self) -> bool:
        return "colorize" in self.operations

    @property
    def inpaint(self) -> bool:
        return "inpaint" in self.operations

    @property
    def keyframe_colour(self) -> bool:
        """A video colorized from keyframes carried through each shot (gpu.plan_colour)."""
        return self.colorize and self.colour_mode == "keyframes"

    @property
    def tracks_boxes(self) -> bool:
        """Some box is followed by the tracker: all with track_boxes, else those marked `track`."""
        return bool(self.boxes) and (self.track_boxes or any(b.get("track") for b in self.boxes))

    @property
    def has_mask_options(self) -> bool:
        return bool(self.boxes or self.detect_damage)

    def to_json(self) -> dict[str, Any]:
        """The options as stored on the job and shown by the API (operations live in
        their own column)."""
        out = {f.name: getattr(self, f.name) for f in FIELDS if f.name != "colorize"}
        out["boxes"], out["detect_damage"] = list(self.boxes), list(self.detect_damage)
        out["colorize"] = self.colorize_choice
        return out

    @classmethod
    def from_job(cls, operations: list[str], stored: Mapping[str, Any], settings: Settings) -> "JobOptions":
        """A stored job's options. Rows written before every default was stored get the
        missing ones from `settings`."""
        return parse_options({**stored, "operations": list(operations)}, settings)

    @classmethod
    def of(cls, job: Any, settings: Settings) -> "JobOptions":
        """The options of a job row (anything with `operations` and `options`)."""
        return cls.from_job(job.operations, job.options or {}, settings)


def option_field_names() -> frozenset[str]:
    """Every form field an option may arrive in: each option by name and by its other
    spellings, `operations`, and one checkbox per operation. Derived from FIELDS, so a
    new option is known the moment it is declared."""
    aliases = {flag.lstrip("-") for spec in FIELDS for flag in spec.flags}
    return frozenset({spec.name for spec in FIELDS} | aliases | {"operations", *OPERATIONS})


def parse_options(form: Mapping[str, Any], settings: Settings) -> JobOptions:
    """Operations and options from form fields (strings), JSON or CLI values, each
    checked once, with the defaults of everything not given."""
    operations, choice = parse_operations(form)
    values: dict[str, Any] = {"operations": operations, "colorize_choice": choice}
    for spec in FIELDS:
        if spec.kind == "tristate":
            continue  # colorize: read with the operations
        raw = form.get(spec.name)
        if raw is None and spec.flags:
            raw = next((form[f.lstrip("-")] for f in spec.flags if form.get(f.lstrip("-")) is not None), None)
        values[spec.name] = spec.default_for(settings) if _blank(raw) else parse_value(spec, raw)
    options = JobOptions(**values)
    if options.track_boxes and not options.boxes:
        raise OptionError("track_boxes needs at least one box in boxes")
    return options


def parse_operations(form: Mapping[str, Any]) -> tuple[tuple[str, ...], str]:
    """The operations asked for and the colorize choice (auto, yes or no).

    `operations` is a comma list or a list; without it, one field per operation (the
    form's `inpaint` checkbox and `colorize` choice). `colorize` not given means auto when
    no operation is named at all, else what the operations say (`operations=inpaint` or
    `inpaint=1` alone: no, as before). With auto the operations may still lack colorize:
    intake decides it from the input (`tintype.jobs.colour_input`)."""
    raw = form.get("operations")
    if isinstance(raw, str) and raw.strip():
        ops = [o.strip() for o in raw.split(",") if o.strip()]
    elif isinstance(raw, (list, tuple)) and raw:
        ops = [str(o) for o in raw]
    else:
        ops = ["inpaint"] if _truthy(form.get("inpaint")) else []
    unknown = [o for o in ops if o not in OPERATIONS]
    if unknown:
        raise OptionError(f"unknown operation(s) {', '.join(unknown)}; choose colorize and/or inpaint")
    choice = _colorize_choice(form.get("colorize"), ops)
    if choice == YES:
        ops.append("colorize")  # with auto, only an `operations` that names colorize keeps it
    if not ops and choice != AUTO:
        raise OptionError("choose at least one operation: colorize and/or inpaint", "no_operation")
    return tuple(o for o in OPERATIONS if o in ops), choice


def _colorize_choice(raw: Any, ops: list[str]) -> str:
    """auto, yes or no from the `colorize` field (also the old checkbox's 1/0/on/off)."""
    if _blank(raw):
        return YES if "colorize" in ops else (NO if ops else AUTO)
    word = str(raw).strip().lower() if not isinstance(raw, bool) else ("1" if raw else "0")
    choice = AUTO if word == AUTO else YES if word in TRUE_WORDS else NO if word in FALSE_WORDS else None
    if choice is None:
        raise OptionError(f"colorize must be auto, yes or no, got {raw!r}")
    if choice == NO and "colorize" in ops:
        raise OptionError("operations asks to colorize but colorize is no; leave one of them out")
    return choice


def check_available(options: JobOptions, settings: Settings) -> None:
    """Refuse a model these settings cannot run, naming the setting that would make it
    usable; only for an operation the job may run (a recolour keeps its parent's
    inpainting model but never inpaints)."""
    wanted = [("inpaint_model", options.inpaint_model) if options.inpaint else None,
              ("colorize_model", options.colorize_model) if options.colorize_choice != NO else None]
    for name, model in filter(None, wanted):
        setting = missing_setting(model, settings)
        if setting is not None:
            spec = next(f for f in FIELDS if f.name == name)
            raise OptionError(f"{name} {model} is not available on this server: the operator sets {setting} "
                              f"to enable it; choose one of {', '.join(spec.choices_for(settings))}",
                              "model_unavailable")


def parse_value(spec: Field, raw: Any) -> Any:
    return _PARSERS[spec.kind](spec, raw)


def _blank(raw: Any) -> bool:
    """Not given: absent, an empty form field, or an empty list as stored."""
    return raw is None or (isinstance(raw, str) and raw.strip() == "") or (isinstance(raw, (list, tuple)) and not raw)


def _truthy(value: Any) -> bool:
    return value is not None and str(value).strip().lower() in TRUE_WORDS


def _number(spec: Field, raw: Any) -> int | float:
    kind = int if spec.kind == "int" else float
    try:
        if isinstance(raw, bool) or (kind is int and isinstance(raw, float) and raw != int(raw)):
            raise ValueError
        value = kind(raw)
    except (TypeError, ValueError):
        whole = "a whole number" if kind is int else "a number"
        raise OptionError(f"{spec.name} must be {whole} between {_shown(spec.low)} and {_shown(spec.high)}, "
                          f"got {raw!r}") from None
    if not spec.low <= value <= spec.high:
        raise OptionError(f"{spec.name} must be between {_shown(spec.low)} and {_shown(spec.high)}, got {value}")
    return value


def _shown(bound: float | None) -> str:
    return f"{bound:g}" if bound is not None else "?"


def _choice(spec: Field, raw: Any) -> str:
    value = str(raw).strip().lower() if spec.name == "output_format" else str(raw).strip()
    value = "jpeg" if spec.name == "output_format" and value == "jpg" else value
    if value not in spec.choices:
        raise OptionError(f"{spec.name} must be one of {', '.join(spec.choices)}, got {value!r}")
    return value


def _flag(spec: Field, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word not in TRUE_WORDS + FALSE_WORDS:
        raise OptionError(f"{spec.name} must be 1 or 0 (true/false), got {raw!r}")
    return word in TRUE_WORDS


def _mask_errors(parse: Callable[[Any], Any]) -> Callable[[Field, Any], Any]:
    def wrapped(_spec: Field, raw: Any) -> Any:
        try:
            return tuple(parse(raw))
        except MaskError as exc:
            raise OptionError(str(exc), exc.code) from None
    return wrapped


_PARSERS: dict[str, Callable[[Field, Any], Any]] = {
    "int": _number, "float": _number, "choice": _choice, "flag": _flag,
    "boxes": _mask_errors(parse_boxes), "kinds": _mask_errors(parse_damage_kinds),
}
