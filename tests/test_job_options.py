"""JobOptions: parsed and bounded once, defaults resolved at submission, and the one
source the OpenAPI document, the web form and the CLI flags are made from."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from tintype import cli
from tintype.jobs.catalogue import COLORIZE_MODELS, INPAINT_MODELS
from tintype.jobs.options import FIELDS, JobOptions, OptionError, parse_options
from tintype.settings import load_settings
from tintype.web.app import create_app
from tintype.web.openapi import openapi_document


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("TINTYPE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RENDER_SIZE", "320")
    monkeypatch.setenv("TEMPORAL_STRENGTH", "0.6")
    return load_settings()


def test_every_default_is_resolved_when_the_job_is_parsed(settings):
    options = parse_options({"operations": "colorize"}, settings)
    assert (options.render_size, options.temporal_strength) == (320, 0.6)
    assert (options.colorize_model, options.inpaint_model) == (settings.colorize_model, settings.inpaint_model)
    assert options.mask_dilation == settings.mask_dilation and options.saturation == 1.0
    stored = options.to_json()
    assert set(stored) == {spec.name for spec in FIELDS}  # stored whole, nothing left to the workers
    later = dataclasses.replace(settings, render_size=128, temporal_strength=0.0)
    assert JobOptions.from_job(["colorize"], stored, later) == options  # a settings change alters no queued job


def test_rows_from_before_every_default_was_stored_get_the_current_ones(settings):
    options = JobOptions.from_job(["colorize"], {"output_format": "png", "mask_dilation": 3}, settings)
    assert options.render_size == 320 and options.temporal_strength == 0.6 and options.mask_dilation == 3


def test_values_are_typed_from_form_strings_json_and_cli(settings):
    form = parse_options({"colorize": "1", "render_size": "384", "saturation": "1.5", "temporal_strength": "0",
                          "output_format": "JPG", "inpaint_model": "telea"}, settings)
    typed = parse_options({"operations": ["colorize"], "render_size": 384, "saturation": 1.5,
                           "temporal_strength": 0, "output_format": "jpeg", "inpaint_model": "telea"}, settings)
    assert form == typed and form.render_size == 384 and form.temporal_strength == 0.0
    assert form.output_format == "jpeg" and form.operations == ("colorize",)


def test_mask_options_are_parsed_and_checked(settings):
    opts = parse_options({"operations": "inpaint",
                          "boxes": '[[1, 2, 3, 4], {"x": 5, "y": 6, "w": 7, "h": 8, "first": 2}]',
                          "track_boxes": "on", "detect_damage": "lines,dust", "mask_dilation": "5"}, settings)
    assert opts.boxes == ({"x": 1, "y": 2, "w": 3, "h": 4}, {"x": 5, "y": 6, "w": 7, "h": 8, "first": 2})
    assert opts.track_boxes and opts.detect_damage == ("dust", "lines") and opts.mask_dilation == 5
    assert opts.to_json()["boxes"][1]["first"] == 2 and opts.has_mask_options


@pytest.mark.parametrize("form, words", [
    ({"render_size": "32"}, "render_size must be between 64 and 2048, got 32"),
    ({"render_size": "300.5"}, "render_size must be a whole number"),
    ({"saturation": "lots"}, "saturation must be a number between 0 and 3"),
    ({"temporal_strength": "1.5"}, "temporal_strength must be between 0 and 1"),
    ({"colorize_model": "deoldify"}, "colorize_model must be one of"),
    ({"output_format": "gif"}, "output_format must be one of png, jpeg"),
    ({"track_boxes": "maybe"}, "track_boxes must be 1 or 0"),
    ({"track_boxes": "1"}, "track_boxes needs at least one box"),
    ({"mask_dilation": "65"}, "mask_dilation must be between 0 and 64"),
    ({"boxes": '[{"x": 1.5, "y": 0, "w": 2, "h": 2}]'}, "whole number"),
    ({"boxes": '[{"x": 0, "y": 0, "w": 0, "h": 2}]'}, "w, h > 0"),
    ({"boxes": "{}"}, "non-empty JSON list"),
    ({"boxes": "[" + ",".join(["[0,0,1,1]"] * 40) + "]"}, "at most 32"),
    ({"detect_damage": "mould"}, "unknown kind"),
    ({"operations": "sharpen"}, "unknown operation"),
])
def test_bad_values_are_refused_with_the_bound_that_was_broken(settings, form, words):
    with pytest.raises(OptionError, match=re.escape(words)):
        parse_options({"operations": "colorize,inpaint", **form}, settings)


def test_the_catalogue_is_what_the_model_options_offer():
    choices = {spec.name: set(spec.choices) for spec in FIELDS if spec.kind == "choice"}
    assert choices["colorize_model"] == COLORIZE_MODELS and choices["inpaint_model"] == INPAINT_MODELS
    for spec in FIELDS:
        if spec.choice_labels and spec.kind == "choice":
            assert set(spec.choice_labels) == set(spec.choices), spec.name


def test_openapi_submission_and_job_schemas_match_the_options():
    document = openapi_document()
    form = document["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    stored = document["components"]["schemas"]["Job"]["properties"]["options"]
    assert set(stored["required"]) == {spec.name for spec in FIELDS}
    for spec in FIELDS:
        sent = form["properties"][spec.name]
        if spec.kind in ("int", "float"):
            assert (sent["minimum"], sent["maximum"]) == (spec.low, spec.high), spec.name
            assert sent["type"] == ("integer" if spec.kind == "int" else "number")
        if spec.kind == "choice":
            assert sent["enum"] == list(spec.choices) == stored["properties"][spec.name]["enum"]
        assert spec.help in sent["description"]


def _form_controls(html: str) -> dict[str, str]:
    controls = {m.group(1): m.group(0) for m in re.finditer(r'<input\b[^>]*\bname="(\w+)"[^>]*>', html)}
    controls.update({m.group(1): m.group(0) for m in re.finditer(r'<select name="(\w+)">.*?</select>', html, re.S)})
    return controls


def test_the_web_form_offers_every_option_with_the_api_bounds(settings):
    app = create_app(settings)
    html = app.test_client().get("/").get_data(as_text=True)
    controls = _form_controls(html)
    for spec in FIELDS:
        control = controls[spec.name]
        if spec.kind in ("int", "float"):
            assert f'min="{spec.low}"' in control and f'max="{spec.high}"' in control, control
        if spec.kind in ("choice", "tristate"):
            offered = re.findall(r'<option value="([^"]*)"', control)
            assert sorted(offered) == sorted(spec.choices_for(settings)), spec.name
        if spec.kind == "kinds":
            offered = re.findall(r'<option value="([^"]*)"', control)
            assert {k for value in offered for k in value.split(",") if k} == set(spec.choices)
    assert 'placeholder="320"' in controls["render_size"]  # the default a job would get now


def test_every_option_is_a_restore_flag_that_reaches_the_job(settings, tmp_path):
    argv = ["restore", "in.mp4", "-o", str(tmp_path / "out.mp4"), "--colorize", "--temporal-strength", "0.25",
            "--render-size", "192", "--saturation", "0.5", "--colorize-model", "effnet-lite0-unet-v2",
            "--inpaint-model", "telea", "--mask-dilation", "7", "--boxes", "[[1, 2, 3, 4]]", "--track",
            "--detect-damage", "dust", "--output-format", "png"]
    parser = cli.build_parser()
    actions = parser._subparsers._group_actions[0].choices["restore"]._actions
    flags = {action.dest: action for action in actions}
    strings = {s for action in actions for s in action.option_strings}
    for spec in FIELDS:
        assert spec.name in flags and set(spec.cli_flags) <= strings, spec.name
        if spec.kind == "choice":
            assert tuple(flags[spec.name].choices) == spec.choices
    options = parse_options(cli.restore_form(parser.parse_args(argv)), settings)
    assert options.temporal_strength == 0.25 and options.render_size == 192 and options.saturation == 0.5
    assert options.colorize_model == "effnet-lite0-unet-v2" and options.inpaint_model == "telea"
    assert options.mask_dilation == 7 and options.track_boxes and options.detect_damage == ("dust",)
    assert options.operations == ("inpaint", "colorize")
    plain = parse_options(cli.restore_form(parser.parse_args(["restore", "in.jpg", "-o", "out.jpg"])), settings)
    assert plain.colorize_undecided and plain.output_format == "jpeg" and plain.render_size == 320
    never = parse_options(cli.restore_form(parser.parse_args(["restore", "in.jpg", "-o", "o.jpg", "--no-colorize",
                                                              "--detect-damage", "scratches"])), settings)
    assert never.operations == ("inpaint",) and never.colorize_choice == "no"
    assert Path(parser.parse_args(argv).input) == Path("in.mp4")


@pytest.mark.parametrize("form, operations, choice", [
    ({}, (), "auto"),  # nothing named: intake decides from the input's colour
    ({"colorize": "auto", "inpaint": "1"}, ("inpaint",), "auto"),  # the form's default with Inpaint ticked
    ({"colorize": "yes"}, ("colorize",), "yes"),
    ({"colorize": "1"}, ("colorize",), "yes"),  # the old checkbox
    ({"colorize": "no", "inpaint": "on"}, ("inpaint",), "no"),
    ({"inpaint": "1"}, ("inpaint",), "no"),  # named operations without colorize: as before
    ({"operations": "inpaint"}, ("inpaint",), "no"),
    ({"operations": "colorize"}, ("colorize",), "yes"),  # naming colorize asks for it
    ({"operations": "inpaint", "colorize": "auto"}, ("inpaint",), "auto"),
])
def test_colorize_is_auto_yes_or_no(settings, form, operations, choice):
    options = parse_options(form, settings)
    assert (options.operations, options.colorize_choice) == (operations, choice)
    assert options.to_json()["colorize"] == choice
    assert options.colorize_undecided == (choice == "auto")


@pytest.mark.parametrize("form, words", [
    ({"colorize": "no"}, "choose at least one operation"),
    ({"colorize": "maybe"}, "colorize must be auto, yes or no"),
    ({"operations": "colorize", "colorize": "no"}, "colorize is no"),
])
def test_contradictory_colorize_is_refused(settings, form, words):
    with pytest.raises(OptionError, match=re.escape(words)):
        parse_options(form, settings)


def test_a_decided_job_reads_back_as_stored(settings):
    """Workers see a plain bool: a stored auto job colorizes exactly when intake said so."""
    stored = parse_options({"colorize": "auto", "inpaint": "1"}, settings).to_json()
    assert JobOptions.from_job(["inpaint", "colorize"], stored, settings).colorize
    assert not JobOptions.from_job(["inpaint"], stored, settings).colorize


def test_models_that_need_an_operators_file_are_offered_only_once_it_is_set(settings, tmp_path):
    from tintype.jobs.intake import IntakeError
    from tintype.jobs.intake import parse_options as intake_options

    inpaint = next(spec for spec in FIELDS if spec.name == "inpaint_model")
    assert "torchscript" not in inpaint.choices_for(settings)
    with pytest.raises(IntakeError, match="TORCHSCRIPT_INPAINT_PATH") as refused:
        intake_options({"operations": "inpaint", "inpaint_model": "torchscript"}, settings)
    assert (refused.value.status, refused.value.code) == (400, "model_unavailable")
    with pytest.raises(IntakeError, match="ONNX_COLORIZER_PATH"):
        intake_options({"colorize_model": "onnx"}, settings)
    html = create_app(settings).test_client().get("/").get_data(as_text=True)
    assert "torchscript" not in _form_controls(html)["inpaint_model"]
    served = openapi_document(settings)["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]
    assert "torchscript" not in served["multipart/form-data"]["schema"]["properties"]["inpaint_model"]["enum"]

    configured = dataclasses.replace(settings, torchscript_inpaint_path=str(tmp_path / "lama.pt"))
    assert "torchscript" in inpaint.choices_for(configured)
    assert intake_options({"operations": "inpaint", "inpaint_model": "torchscript"}, configured).inpaint_model \
        == "torchscript"
    # a job that does not inpaint is not refused for its (stored) inpainting model
    assert intake_options({"operations": "colorize", "inpaint_model": "torchscript"}, settings).colorize
