#!/bin/sh
# Rebuild opennmes-0.1.0.db (beside this script) with the code of commit 840ed9d, the
# OpenNMES 0.1.0 that the upgrade test starts from. See README.md beside it.
#
#   tests/store/data/make_opennmes_0_1_0_db.sh          (from anywhere in the checkout)
#
# The code of that commit is unpacked in a temporary folder and run with PYTHONPATH pointing
# at it; the Python is the project's venv unless PYTHON is set.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
py=${PYTHON:-$repo/.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$repo" archive 840ed9d src | tar -x -C "$work"
export PYTHONPATH="$work/src" XDG_DATA_HOME="$work/xdg"
unset NMES_DB_URL
db="$work/opennmes-0.1.0.db"
url="sqlite:///$db"
nmes() { "$py" -m opennmes "$@"; }

# the code that runs is the old one
"$py" -c "import opennmes, sys; assert opennmes.__file__.startswith('$work'), opennmes.__file__"

# patients
nmes db add-patient DEMO-01 --db "$url" --year-of-birth 1961 --sex male --height '178 cm' \
    --mass '82 kg' --clinician clin
nmes db add-patient TKA-001 --db "$url" --year-of-birth 1957 --sex female --height '164 cm' \
    --mass '71.5 kg' --contraindication 'metal_implant@left hip' --clinician clin

# a short recorded session on the simulator (3 contractions, signals at 20 Hz to keep it small)
cat > "$work/short.yaml" <<'YAML'
name: Quadriceps short
channels:
  - name: right quadriceps
    electrode: {area: 80 cm2, site: quadriceps, side: right}
    waveform: symmetric-biphasic
    frequency: 35 Hz
    pulse_width: 300 us
    amplitude: 40 mA
    ramp_up: 1 s
    on: 3 s
    ramp_down: 1 s
    off: 4 s
repetitions: 3
YAML
nmes run "$work/short.yaml" --device 'sim://healthy-adult?sfreq=20&seed=3' --patient DEMO-01 \
    --db "$url" --virtual --titrate-to 30 --titrate-interval 0.2 --plain

# a prescription and outcome measurements
nmes protocols prescribe TKA-001 total-knee-arthroplasty --db "$url" --side right \
    --start 2026-11-24 --reference 2026-11-17 --amplitude '60 mA' --by clin
nmes outcomes add TKA-001 tug '14.2 s' --db "$url" --date 2026-11-24 --by clin
nmes outcomes add TKA-001 rom '85 deg' --db "$url" --date 2026-11-24 --side right --by clin
nmes outcomes add TKA-001 tug '12.1 s' --db "$url" --date 2026-12-01 --by clin

# web accounts: the first admin (as `nmes serve` makes it, with a known password here), a
# clinician and the patient's account, with their audit lines
"$py" - "$url" <<'PY'
import sys

from opennmes.store import open_store
from opennmes.web import Accounts

with open_store(sys.argv[1]) as store:
    acc = Accounts(store)
    for name, password, role, patient in (("admin", "admin-password-0.1.0", "admin", None),
                                          ("clin", "clinician-password-0.1.0", "clinician",
                                           None),
                                          ("tka001", "patient-password-0.1.0", "patient",
                                           "TKA-001")):
        acc.create_user(name, password, role, patient)
        acc.audit(None, "user_created", f"{role} account {name} created",
                  patient_id=patient, detail={"username": name, "role": role})
PY

# one file, no -wal beside it
"$py" - "$db" <<'PY'
import sqlite3
import sys

con = sqlite3.connect(sys.argv[1])
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
con.execute("PRAGMA journal_mode=DELETE")
con.execute("VACUUM")
con.close()
PY
cp "$db" "$here/opennmes-0.1.0.db"
ls -l "$here/opennmes-0.1.0.db"
