# Sourced by a device call's script from the repository root: a venv at /tmp/v over the device's
# own torch and Triton, with the carried loadgen wheel (.whl) and this checkout installed, and
# PY, RECSUITE_DATA_DIR and PYTHONUNBUFFERED set. Every prepared H200 call began with these lines.
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
