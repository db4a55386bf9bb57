#!/usr/bin/env bash
# Install sweepscope (runner, dashboard, experiments) and its dependencies into one Python
# environment: the image's (the Dockerfile RUNs this) or a virtualenv (tests/test_install.py).
#
#   PYTHON=python3             the interpreter whose environment receives the install
#   TORCH_SPEC=torch==2.13.0   pinned: a plain `torch` can pull a multi-GB CUDA build
#   TORCH_INDEX_URL=...        where torch comes from, e.g. https://download.pytorch.org/whl/cpu
#                              (the image's default) or .../whl/cu128 for GPU nodes; unset:
#                              pip's own configuration decides
#   EXTRAS=postgres            the optional dependencies to add (postgres: the psycopg driver)
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}
extras=${EXTRAS:-postgres}
pip=("$python" -m pip install --no-cache-dir --quiet)

# torch first, from its own index where one is given, so the project's install finds it
# satisfied instead of resolving `torch>=2.2` to whatever the default index offers.
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "${pip[@]}" --index-url "$TORCH_INDEX_URL" "$torch_spec"
else
    "${pip[@]}" "$torch_spec"
fi
"${pip[@]}" ".[${extras}]" "$torch_spec"
"$python" -c "import runner, dashboard, experiments, ray, torch; print('sweepscope installed:', 'ray', ray.__version__, 'torch', torch.__version__)"
