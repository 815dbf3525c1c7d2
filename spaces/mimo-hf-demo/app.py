"""MIMONets demo Space: classify several inputs in superposition and see what it costs per input.

The Hub's hosted inference does not run custom-code models, so this Space is where a MIMONets
checkpoint runs live. It loads each checkpoint exactly as a user would, through
`from_pretrained(..., trust_remote_code=True, revision=...)`; it never imports mimo_hf.

Which models: see `demo_inference.configured_models` (MIMO_DEMO_MODELS, MIMO_DEMO_ZOO, the repository's
zoo/ when run from a checkout, else models.json). Run locally with `python spaces/mimo-hf-demo/app.py`;
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT choose the address, as on Spaces.
"""

from pathlib import Path

import gradio as gr
from PIL import Image

import demo_inference as inference

EXAMPLES = Path(__file__).resolve().parent / "examples"

INTRO = """
# MIMONets: several inputs in one forward pass

A MIMONet binds each input to its own key, adds the bound inputs into **one bundle** and runs the
network once on it ([Menet et al., NeurIPS 2023](https://arxiv.org/abs/2312.02829)). The
*operating point* says how many inputs share a pass: more is faster per input and less accurate,
and a prediction depends on which inputs share its bundle. Upload several inputs: they go through
the model in **one** call, in upload order, and the time shown is that call's wall time divided by
the number of inputs.
"""

TAB_TITLES = {inference.IMAGE: "Images (MIMOConv)", inference.TEXT: "Text (MIMOFormer)"}


def point_choices(spec):
    """Radio choices and default for `spec`'s operating points (loads the config, not the weights)."""
    points, default = inference.operating_points(inference.load_config(spec))
    return [(_point_label(point), point.name) for point in points], default


def _point_label(point):
    if point.inputs_per_pass == 1:
        return f"{point.name} (one input per pass: most accurate)"
    return f"{point.name} ({point.inputs_per_pass} inputs per pass)"


def timing_markdown(result):
    t = result["timing"]
    runtime = "" if result.get("runtime", inference.TORCH) == inference.TORCH else f" on **{result['runtime']}**"
    inputs = f"{result['num_inputs']} input" + ("s" if result["num_inputs"] != 1 else "")
    threads = f"{t['torch_threads']} CPU thread" + ("s" if t["torch_threads"] != 1 else "")
    return (
        f"**{inputs}** at **{result['operating_point']}**{runtime} "
        f"({result['inputs_per_pass']} per pass) in one forward call: "
        f"**{t['forward_ms_per_input']:.2f} ms per input** ({t['forward_ms']:.1f} ms forward, "
        f"{t['inputs_per_second']:.0f} inputs/s, {threads}); "
        f"preprocessing {t['preprocess_ms']:.1f} ms."
    )


def prediction_rows(result):
    return [
        [item["input"], rank + 1, top["label"], round(top["score"], 4)]
        for item in result["predictions"]
        for rank, top in enumerate(item["top"])
    ]


def _run_or_show_error(function, *args):
    try:
        return function(*args)
    except ValueError as error:  # a user mistake (bad operating point, no input): say so in the UI
        raise gr.Error(str(error)) from error


def make_image_handler(specs):
    by_name = {spec.name: spec for spec in specs}

    def classify(model_name, files, operating_point, top_k, runtime=inference.TORCH):
        if not files:
            raise gr.Error("Upload at least one image.")
        paths = [Path(getattr(f, "name", f)) for f in files]
        loaded = inference.load(by_name[model_name])
        images = [Image.open(path) for path in paths]
        result = _run_or_show_error(
            inference.classify_images, loaded, images, operating_point, top_k, [p.name for p in paths], runtime
        )
        gallery = [
            (str(path), f"{item['top'][0]['label']} {item['top'][0]['score']:.2f}")
            for path, item in zip(paths, result["predictions"])
        ]
        return gallery, prediction_rows(result), timing_markdown(result), result

    return classify


def make_text_handler(specs):
    by_name = {spec.name: spec for spec in specs}

    def classify(model_name, text, operating_point, top_k):
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        if not lines:
            raise gr.Error("Enter at least one input, one per line.")
        loaded = inference.load(by_name[model_name])
        result = _run_or_show_error(inference.classify_texts, loaded, lines, operating_point, top_k)
        return prediction_rows(result), timing_markdown(result), result

    return classify


def classifier_tab(task, specs):
    """One tab: model and operating-point pickers, inputs, predictions. Generic over the task."""
    choices = {spec.name: point_choices(spec) for spec in specs}
    # Start on the checkpoint with the most operating points: it shows the trade-off best.
    first = max(choices, key=lambda name: len(choices[name][0]))
    # The radio accepts every checkpoint's points: API calls (which never fire `model.change`) are
    # validated against these choices; a point the chosen checkpoint lacks gets a clear error.
    union = list(dict.fromkeys(choice for name in choices for choice in choices[name][0]))
    with gr.Row():
        model = gr.Dropdown(list(choices), value=first, label="Checkpoint")
        point = gr.Radio(union, value=choices[first][1], label="Operating point")
        top_k = gr.Slider(1, 10, value=3, step=1, label="Top-k")

    def show_points(name):  # in the page, offer only the chosen checkpoint's points
        return gr.Radio(choices=choices[name][0], value=choices[name][1])

    model.change(show_points, model, point, api_visibility="private")
    runtime = None
    if task == inference.IMAGE:
        # "ONNX int8" runs the checkpoint's exported int8 graph (its onnx/ folder) in ONNX Runtime.
        runtime = gr.Radio(list(inference.RUNTIMES), value=inference.TORCH, label="Runtime")
        inputs = gr.File(
            file_count="multiple", file_types=["image"], label="Images (all go through one forward pass)", height=200
        )
        button = gr.Button("Classify", variant="primary")
        gallery = gr.Gallery(label="Top-1 per image", columns=10, object_fit="contain", height=160)
        outputs, handler, api_name = [gallery], make_image_handler(specs), "classify_images"
        examples = sorted(str(path) for path in EXAMPLES.glob("*.jpg"))
        if examples:
            gr.Examples([[examples]], [inputs], label="CIFAR-10 test images (one per class)")
    else:
        inputs = gr.Textbox(lines=6, label="Inputs, one per line (all go through one forward pass)")
        button = gr.Button("Classify", variant="primary")
        outputs, handler, api_name = [], make_text_handler(specs), "classify_texts"
        gr.Examples(
            [["[MAX 2 9 [MIN 4 7 ] 0 ]\n[SM 3 5 [MED 1 8 6 ] ]\n[MIN 9 [MAX 1 2 ] 4 ]\n7"]],
            [inputs],
            label="ListOps expressions",
        )
    timing = gr.Markdown()
    table = gr.Dataframe(headers=["input", "rank", "label", "score"], label="Predictions", interactive=False)
    with gr.Accordion("Raw result (JSON, as the API returns it)", open=False):
        raw = gr.JSON()
    extra = [runtime] if runtime is not None else []
    button.click(handler, [model, inputs, point, top_k] + extra, outputs + [table, timing, raw], api_name=api_name)
    return model, point, show_points


def build_demo(specs=None):
    specs = inference.discover_models() if specs is None else specs
    with gr.Blocks(title="MIMONets demo") as demo:
        gr.Markdown(INTRO)
        for task in (inference.IMAGE, inference.TEXT):
            task_specs = [spec for spec in specs if spec.task == task]
            if task_specs:  # the text tab appears once a MIMOFormer folder (with tokenizer) is served
                with gr.Tab(TAB_TITLES[task]):
                    model, point, show_points = classifier_tab(task, task_specs)
                demo.load(show_points, model, point, api_visibility="private")
        if not specs:
            gr.Markdown("**No models found.** Set MIMO_DEMO_MODELS or MIMO_DEMO_ZOO.")
    # One request at a time: concurrent forward passes on a small CPU would distort the timings.
    demo.queue(default_concurrency_limit=1)
    return demo


if __name__ == "__main__":
    build_demo().launch()
