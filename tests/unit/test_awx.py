"""AWX / Automation Platform support: the survey specs and the execution environment definition.

The survey specs are checked against the rules AWX applies when a survey is POSTed to
``/api/v2/job_templates/N/survey_spec/`` (``JobTemplateSurveySpec._validate_spec_data``) and
when a job is launched (``SurveyJobTemplateMixin._survey_element_validation``, which also
decides whether a question's default is used at all), then against what the playbooks accept.

The execution environment definition (awx/execution-environment.yml) is turned into a build
context by ``ansible-builder create`` (offline: it only writes files), and the galaxy and
introspection stages of the image build are replayed on this machine: ``ansible-galaxy`` installs
the collection from the context and ansible-builder's own introspection script lists the Python
and system requirements, which it reads from the collection's own dependency declaration,
meta/execution-environment.yml.

These tests check the repository (its awx/ files, galaxy.yml, the requirements files), so they are
not part of the collection tarball (galaxy.yml build_ignore).
"""

import importlib.metadata
import importlib.util
import json
import keyword
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.parsing.convert_bool import BOOLEANS, boolean

ROOT = Path(__file__).resolve().parents[2]
EE_FILE = ROOT / "awx" / "execution-environment.yml"
DE_FILE = ROOT / "awx" / "decision-environment.yml"
EE_DEPENDENCIES = ROOT / "meta" / "execution-environment.yml"
ROLE_SPEC = ROOT / "roles" / "diagnose_502" / "meta" / "argument_specs.yml"
DRIFT_PLAYBOOK = ROOT / "playbooks" / "drift_check.yml"
SURVEYS = {
    "diagnose_502": ROOT / "awx" / "survey_diagnose_502.json",
    "drift_check": ROOT / "awx" / "survey_drift_check.json",
}
INSTALL_HINT = f"install it with: {Path(sys.executable).parent / 'pip'} install -r requirements-awx.txt (ansible-builder>=3.1,<4)"

# AWX's question types and the JSON type a non-empty default must have (awx.main.constants).
SURVEY_TYPES = {
    "text": (str,),
    "textarea": (str,),
    "password": (str,),
    "multiplechoice": (str,),
    "multiselect": (str,),
    "integer": (int,),
    "float": (float, int),
}
# Role option types (argument_specs) a survey answer of each question type can feed.
COMPATIBLE_OPTION_TYPES = {
    "text": {"str", "path", "raw"},
    "textarea": {"str", "path", "raw"},
    "password": {"str", "raw"},
    "integer": {"int", "float", "raw"},
    "float": {"float", "raw"},
    "multiplechoice": {"str", "bool", "raw"},
    "multiselect": {"list"},
}
# The Kubernetes credential supplies these (K8S_AUTH_*): a survey must not ask for them.
AUTH_VARIABLES = {
    "diagnose_502_kubeconfig",
    "diagnose_502_context",
    "diagnose_502_host",
    "diagnose_502_api_key",
    "diagnose_502_validate_certs",
    "diagnose_502_ca_cert",
}


# --- AWX's survey rules, re-stated -----------------------------------------------------------


def _is_number(value, types):
    return isinstance(value, types) and not isinstance(value, bool)


def choice_list(choices):
    """Choices as AWX reads them: a list, or a string with one choice per non-blank line."""
    if isinstance(choices, str):
        return [line for line in choices.splitlines() if line.strip()]
    return list(choices)


def answer_errors(question, value):
    """Why AWX would reject ``value`` for ``question`` at launch (empty when it accepts it)."""
    qtype, var = question["type"], question["variable"]
    low, high = question.get("min"), question.get("max")
    low = None if low in ("", None) else low
    high = None if high in ("", None) else high
    if qtype in ("text", "textarea", "password"):
        if not isinstance(value, str):
            return [f"{var}: {value!r} is not a string"]
        if low is not None and len(value) < low:
            return [f"{var}: {value!r} is shorter than min {low}"]
        if high is not None and len(value) > high:
            return [f"{var}: {value!r} is longer than max {high}"]
    elif qtype in ("integer", "float"):
        if not _is_number(value, int if qtype == "integer" else (int, float)):
            return [f"{var}: {value!r} is not {'an integer' if qtype == 'integer' else 'a number'}"]
        if low is not None and value < low:
            return [f"{var}: {value} is below min {low}"]
        if high is not None and value > high:
            return [f"{var}: {value} is above max {high}"]
    elif qtype == "multiplechoice":
        if value not in choice_list(question["choices"]):
            return [f"{var}: {value!r} is not one of the choices"]
    elif qtype == "multiselect":
        if not isinstance(value, list) or any(
            v not in choice_list(question["choices"]) for v in value
        ):
            return [f"{var}: {value!r} is not a list of the choices"]
    return []


def question_errors(idx, question):
    """AWX's per-question POST rules, plus: a default AWX would silently drop at launch is an error."""
    where = f"question {idx}"
    if not isinstance(question, dict):
        return [f"{where} is not a JSON object"]
    for field, types in (
        ("type", str),
        ("question_name", str),
        ("variable", str),
        ("required", bool),
    ):
        if field not in question:
            return [f"{where}: '{field}' is missing"]
        if not isinstance(question[field], types):
            return [f"{where}: '{field}' must be a {'boolean' if types is bool else 'string'}"]
    qtype, var = question["type"], question["variable"]
    where = f"question {idx} ({var})"
    errors = []
    if qtype not in SURVEY_TYPES:
        return [f"{where}: type {qtype!r} is not one of {', '.join(SURVEY_TYPES)}"]
    if not question["question_name"].strip():
        errors.append(f"{where}: 'question_name' is empty")
    if not var.isidentifier() or keyword.iskeyword(var):
        errors.append(f"{where}: 'variable' is not a valid Ansible variable name")
    for key in ("min", "max"):
        if question.get(key) is not None and not _is_number(question[key], int):
            errors.append(f"{where}: '{key}' must be an integer")
    if (
        _is_number(question.get("min"), int)
        and _is_number(question.get("max"), int)
        and question["min"] > question["max"]
    ):
        errors.append(f"{where}: 'min' is greater than 'max'")
    default = question.get("default", "")
    if default != "" and not (
        isinstance(default, SURVEY_TYPES[qtype]) and not isinstance(default, bool)
    ):
        label = {"integer": "an integer", "float": "a number"}.get(qtype, "a string")
        errors.append(f"{where}: default {default!r} must be {label}")
        return errors
    if isinstance(default, str) and default.startswith("$encrypted$"):
        errors.append(f"{where}: '$encrypted$' is reserved for defaults AWX encrypted itself")
    if qtype in ("multiplechoice", "multiselect"):
        if "choices" not in question:
            return errors + [f"{where}: type {qtype} must specify choices"]
        choices = question["choices"]
        if not isinstance(choices, (str, list)) or not all(
            isinstance(c, str) and c.strip() for c in choice_list(choices)
        ):
            return errors + [
                f"{where}: 'choices' must be a list of non-empty strings or one string with a choice per line"
            ]
        if not choice_list(choices):
            errors.append(f"{where}: 'choices' is empty")
        if len(set(choice_list(choices))) != len(choice_list(choices)):
            errors.append(f"{where}: 'choices' repeats a choice")
        defaults = choice_list(default)
        if qtype == "multiplechoice" and len(defaults) > 1:
            errors.append(f"{where}: a multiple choice question can have only one default")
        if any(d not in choice_list(choices) for d in defaults):
            errors.append(f"{where}: the default must be one of the choices")
    elif default != "":
        errors.extend(
            f"{where}: default dropped by AWX at launch: {e}"
            for e in answer_errors(question, default)
        )
    return errors


def survey_errors(survey):
    """Every reason AWX would refuse this survey spec, or drop one of its defaults."""
    if not isinstance(survey, dict):
        return ["the survey spec is not a JSON object"]
    errors = []
    for field, types, label in (
        ("name", str, "a string"),
        ("description", str, "a string"),
        ("spec", list, "a list"),
    ):
        if field not in survey:
            errors.append(f"field '{field}' is missing")
        elif not isinstance(survey[field], types):
            errors.append(f"field '{field}' must be {label}")
    if errors:
        return errors
    if not survey["spec"]:
        return ["'spec' has no questions"]
    seen = set()
    for idx, question in enumerate(survey["spec"]):
        found = question_errors(idx, question)
        errors.extend(found)
        var = question.get("variable") if isinstance(question, dict) else None
        if var in seen:
            errors.append(f"question {idx}: variable {var!r} is used twice")
        seen.add(var)
    return errors


GOOD_QUESTION = {
    "question_name": "Namespace",
    "variable": "ns",
    "type": "text",
    "required": True,
    "min": 1,
    "max": 63,
}


def _survey_with(**changes):
    question = dict(GOOD_QUESTION, **changes)
    return {
        "name": "s",
        "description": "d",
        "spec": [{k: v for k, v in question.items() if v is not None}],
    }


@pytest.mark.parametrize(
    "survey, expected",
    [
        ({"description": "d", "spec": [GOOD_QUESTION]}, "field 'name' is missing"),
        ({"name": "s", "spec": [GOOD_QUESTION]}, "field 'description' is missing"),
        ({"name": "s", "description": "d", "spec": {}}, "field 'spec' must be a list"),
        ({"name": "s", "description": "d", "spec": []}, "'spec' has no questions"),
        (
            {"name": "s", "description": "d", "spec": [GOOD_QUESTION, GOOD_QUESTION]},
            "variable 'ns' is used twice",
        ),
        (_survey_with(required="yes"), "'required' must be a boolean"),
        (_survey_with(variable=None), "'variable' is missing"),
        (_survey_with(type="boolean"), "type 'boolean' is not one of"),
        (_survey_with(variable="my-var"), "not a valid Ansible variable name"),
        (_survey_with(type="integer", default="10"), "default '10' must be an integer"),
        (_survey_with(type="integer", default=True), "default True must be an integer"),
        (_survey_with(min="1"), "'min' must be an integer"),
        (_survey_with(min=5, max=2), "'min' is greater than 'max'"),
        (_survey_with(type="multiplechoice"), "must specify choices"),
        (
            _survey_with(type="multiplechoice", choices=["a", "b"], default="c"),
            "the default must be one of the choices",
        ),
        (_survey_with(type="multiplechoice", choices="a\nb", default="a\nb"), "only one default"),
        (_survey_with(type="multiplechoice", choices=["a", "a"]), "repeats a choice"),
        (_survey_with(type="multiplechoice", choices=["a", ""]), "list of non-empty strings"),
        (_survey_with(type="multiselect", choices=["a", "b"], default=["a"]), "must be a string"),
        (_survey_with(type="text", default="$encrypted$abc"), "'$encrypted$' is reserved"),
        (_survey_with(type="text", default="x" * 64), "longer than max 63"),
        (_survey_with(type="integer", min=1, max=10, default=0), "below min 1"),
        (_survey_with(type="float", max=1, default=1.5), "above max 1"),
    ],
)
def test_the_survey_checker_refuses_what_awx_refuses(survey, expected):
    errors = survey_errors(survey)
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize(
    "survey",
    [
        _survey_with(),
        _survey_with(type="multiplechoice", choices="a\n\nb\n", default="b"),
        _survey_with(type="multiselect", choices=["a", "b", "c"], default="a\nc"),
        _survey_with(type="float", min=0, max=2, default=1),
        _survey_with(type="integer", required=False, default=""),
    ],
)
def test_the_survey_checker_accepts_what_awx_accepts(survey):
    assert survey_errors(survey) == []


# --- the shipped surveys ---------------------------------------------------------------------


def load_survey(name):
    return json.loads(SURVEYS[name].read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(SURVEYS))
def test_shipped_survey_passes_awx_rules(name):
    assert survey_errors(load_survey(name)) == []


def role_options():
    return yaml.safe_load(ROLE_SPEC.read_text(encoding="utf-8"))["argument_specs"]["main"][
        "options"
    ]


def compatibility_errors(question, option):
    """Why a survey answer could not be the value of this role option (empty when it can)."""
    var, qtype, otype = question["variable"], question["type"], option.get("type", "str")
    if otype not in COMPATIBLE_OPTION_TYPES[qtype]:
        return [f"{var}: a {qtype} question cannot feed a {otype} option"]
    if qtype == "multiplechoice" and otype == "bool":
        wrong = [c for c in choice_list(question["choices"]) if c not in BOOLEANS]
        if wrong:
            return [f"{var}: choices {wrong} are not booleans Ansible understands"]
    elif "choices" in option:
        wrong = [c for c in choice_list(question.get("choices", [])) if c not in option["choices"]]
        if qtype not in ("multiplechoice", "multiselect") or wrong:
            return [f"{var}: the option only takes {option['choices']}; the question offers more"]
    return []


def default_matches(question, expected):
    value = question.get("default", "")
    if question["type"] == "multiplechoice" and isinstance(expected, bool):
        return boolean(value) == expected
    return value == expected


def test_diagnose_survey_asks_only_for_role_options_of_a_compatible_type():
    options = role_options()
    errors = []
    for question in load_survey("diagnose_502")["spec"]:
        option = options.get(question["variable"])
        if option is None:
            errors.append(f"{question['variable']}: not an option of roles/diagnose_502")
            continue
        errors.extend(compatibility_errors(question, option))
        if (
            "default" in option
            and "default" in question
            and not default_matches(question, option["default"])
        ):
            errors.append(
                f"{question['variable']}: survey default {question['default']!r} differs from the role's {option['default']!r}"
            )
    assert errors == []


def test_diagnose_survey_requires_what_the_role_requires():
    required = {name for name, option in role_options().items() if option.get("required")}
    questions = {q["variable"]: q for q in load_survey("diagnose_502")["spec"]}
    assert required, "roles/diagnose_502 marks no option required: the argument spec was not read"
    assert {name for name in required if not questions.get(name, {}).get("required")} == set()


@pytest.mark.parametrize("name", sorted(SURVEYS))
def test_surveys_leave_kubernetes_access_to_the_credential(name):
    asked = {q["variable"] for q in load_survey(name)["spec"]}
    assert asked & AUTH_VARIABLES == set()


def drift_playbook():
    if not DRIFT_PLAYBOOK.is_file():
        pytest.fail(
            f"{DRIFT_PLAYBOOK.relative_to(ROOT)} is missing; awx/survey_drift_check.json is its survey"
        )
    return DRIFT_PLAYBOOK.read_text(encoding="utf-8")


def drift_required_variables(text):
    """Variables the drift playbook asserts are set (``X | default('') | length > 0``)."""
    required = set()
    for play in yaml.safe_load(text):
        for task in play.get("tasks", []):
            check = task.get("ansible.builtin.assert") or task.get("assert") or {}
            for condition in check.get("that", []) if isinstance(check, dict) else []:
                match = re.fullmatch(r"\s*(\w+) \| default\(''\) \| length > 0\s*", condition)
                if match:
                    required.add(match.group(1))
    return required


def test_drift_survey_asks_only_for_what_the_drift_playbook_reads():
    text = drift_playbook()
    # The playbook takes its access options from the role's task file, as the role does.
    assert "tasks_from: auth.yml" in text
    # auth.yml sets the options the role's vars/main.yml builds from the role's variables.
    role = ROOT / "roles" / "diagnose_502"
    auth = (role / "tasks" / "auth.yml").read_text() + (role / "vars" / "main.yml").read_text()
    read = set(re.findall(r"\b((?:diagnose_502|drift_check)_\w+)\b", text + auth))
    literal_defaults = {
        name: yaml.safe_load(value)
        for name, value in re.findall(r"\b(\w+) \| default\((\d+|'[^']*')\)", text)
    }
    options = role_options()
    errors = []
    for question in load_survey("drift_check")["spec"]:
        var = question["variable"]
        if var not in read:
            errors.append(f"{var}: playbooks/drift_check.yml never reads it")
        if var in options:
            errors.extend(compatibility_errors(question, options[var]))
        if (
            var in literal_defaults
            and "default" in question
            and not default_matches(question, literal_defaults[var])
        ):
            errors.append(
                f"{var}: survey default {question['default']!r} differs from the playbook's {literal_defaults[var]!r}"
            )
    assert errors == []


def test_drift_survey_requires_what_the_drift_playbook_requires():
    required = drift_required_variables(drift_playbook())
    questions = {q["variable"]: q for q in load_survey("drift_check")["spec"]}
    assert required, (
        "found no `X | default('') | length > 0` assertion in playbooks/drift_check.yml"
    )
    assert {name for name in required if not questions.get(name, {}).get("required")} == set()


# --- the execution environment ---------------------------------------------------------------


def tool(name):
    """An executable installed next to this Python (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found next to {sys.executable} nor on PATH")
    return found


@pytest.fixture(scope="module")
def ee_definition():
    return yaml.safe_load(EE_FILE.read_text(encoding="utf-8"))


def builder_context(definition, context):
    """The build context ``ansible-builder create`` writes for ``definition`` into ``context``."""
    if importlib.util.find_spec("ansible_builder") is None:
        pytest.fail(f"ansible-builder is not installed in {sys.executable}; {INSTALL_HINT}")
    version = importlib.metadata.version("ansible-builder")
    if int(version.split(".")[0]) != 3 or tuple(int(p) for p in version.split(".")[:2]) < (3, 1):
        pytest.fail(
            f"ansible-builder {version} is installed; these tests need 3.1 or newer 3.x; {INSTALL_HINT}"
        )
    env = clean_env(HOME=str(context.parent))  # ansible-builder must not need anything from $HOME
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "ansible_builder",
            "create",
            "-f",
            str(definition),
            "--context",
            str(context),
            "--output-filename",
            "Containerfile",
            "-v",
            "3",
        ],
        cwd=context.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, f"ansible-builder create failed:\n{run.stdout}\n{run.stderr}"
    assert "Complete! The build context can be found at" in run.stdout
    assert "No matches for" not in run.stdout + run.stderr, (
        "an additional_build_files source matched nothing"
    )
    return context


@pytest.fixture(scope="module")
def ee_context(tmp_path_factory):
    """The build context ``ansible-builder create`` writes for awx/execution-environment.yml."""
    return builder_context(EE_FILE, tmp_path_factory.mktemp("ee") / "context")


@pytest.fixture(scope="module")
def de_context(tmp_path_factory):
    """The build context of awx/decision-environment.yml (EDA, docs/eda.md)."""
    return builder_context(DE_FILE, tmp_path_factory.mktemp("de") / "context")


def test_decision_environment_has_ansible_rulebook_java_and_the_collection_with_its_eda_parts(
    de_context,
):
    build = de_context / "_build"
    assert "ansible-rulebook" in (build / "requirements.txt").read_text(encoding="utf-8")
    assert "java-17-openjdk-headless" in (build / "bindep.txt").read_text(encoding="utf-8")
    containerfile = (de_context / "Containerfile").read_text(encoding="utf-8")
    assert "ENV JAVA_HOME=" in containerfile
    assert "introspect.py introspect" in containerfile  # the collection's own requirements
    copy_root = build / "badgateway_k8s"
    wanted = _source_files("extensions") | _source_files("plugins")
    assert Path("extensions/eda/rulebooks/drift_watch.yml") in wanted
    assert Path("extensions/eda/plugins/event_source/drift_watch.py") in wanted
    differs = sorted(
        str(p)
        for p in wanted
        if not (copy_root / p).is_file() or (copy_root / p).read_bytes() != (ROOT / p).read_bytes()
    )
    assert differs == []


def test_ee_definition_is_version_3_with_every_dependency_kind(ee_definition):
    assert ee_definition["version"] == 3
    deps = ee_definition["dependencies"]
    assert {"ansible_core", "ansible_runner", "python", "system", "galaxy"} <= set(deps)
    image = ee_definition["images"]["base_image"]["name"]
    assert "@sha256:" in image or re.fullmatch(r"[\w.:/-]+:\d[\w.-]*", image), (
        "the base image must be pinned to a release tag or a digest, not %s" % image
    )


def test_collection_declares_its_dependencies_for_introspection():
    """meta/execution-environment.yml: only the dependency files, relative to the collection root,
    as ansible-builder's introspection reads it from an installed collection."""
    declared = yaml.safe_load(EE_DEPENDENCIES.read_text(encoding="utf-8"))
    assert set(declared) == {"version", "dependencies"} and declared["version"] in (1, 3)
    assert declared["dependencies"] == {"python": "requirements.txt", "system": "bindep.txt"}
    for name in declared["dependencies"].values():
        assert (ROOT / name).is_file(), name


def test_containerfile_builds_from_the_base_image_with_ansible_and_the_introspected_requirements(
    ee_context, ee_definition
):
    containerfile = (ee_context / "Containerfile").read_text(encoding="utf-8")
    deps = ee_definition["dependencies"]
    assert f'ARG EE_BASE_IMAGE="{ee_definition["images"]["base_image"]["name"]}"' in containerfile
    refs = f"{deps['ansible_core']['package_pip']} {deps['ansible_runner']['package_pip']}"
    assert f'ARG ANSIBLE_INSTALL_REFS="{refs}"' in containerfile
    assert f'ARG PYCMD="{deps["python_interpreter"]["python_path"]}"' in containerfile
    assert (
        "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml"
        in containerfile
    )
    assert (
        "introspect.py introspect --user-pip=requirements.txt --user-bindep=bindep.txt"
        in containerfile
    )
    assert "COPY _build/requirements.txt requirements.txt" in containerfile
    assert "COPY _build/bindep.txt bindep.txt" in containerfile


def test_context_carries_the_collections_python_and_system_requirements(ee_context):
    for name in ("requirements.txt", "bindep.txt"):
        copied = ee_context / "_build" / name
        assert not copied.is_symlink()
        assert copied.read_text(encoding="utf-8") == (ROOT / name).read_text(encoding="utf-8"), name


def _source_files(directory):
    return {
        p.relative_to(ROOT)
        for p in (ROOT / directory).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def test_context_carries_the_collection_sources_but_not_this_definition(ee_context):
    requirements = yaml.safe_load(
        (ee_context / "_build" / "requirements.yml").read_text(encoding="utf-8")
    )
    assert requirements["collections"] == [{"name": "./badgateway_k8s", "type": "dir"}]
    copy_root = ee_context / "_build" / "badgateway_k8s"
    wanted = {
        Path(n) for n in ("galaxy.yml", "README.md", "LICENSE", "requirements.txt", "bindep.txt")
    }
    for directory in ("plugins", "roles", "playbooks", "meta"):
        wanted |= _source_files(directory)
    assert EE_DEPENDENCIES.relative_to(ROOT) in wanted
    missing = sorted(str(p) for p in wanted if not (copy_root / p).is_file())
    assert missing == [], "not in the build context: " + ", ".join(missing)
    differs = sorted(
        str(p) for p in wanted if (copy_root / p).read_bytes() != (ROOT / p).read_bytes()
    )
    assert differs == []
    assert not (copy_root / "awx").exists()


def introspect(script, collections_path, workdir, out, user=True):
    """Run ansible-builder's introspection the way the image build's builder stage does."""
    argv = [
        sys.executable,
        str(script),
        "introspect",
        f"--write-pip={out}/requirements.txt",
        f"--write-bindep={out}/bindep.txt",
        str(collections_path),
    ]
    if user:
        argv[3:3] = ["--user-pip=requirements.txt", "--user-bindep=bindep.txt"]
    return subprocess.run(
        argv, cwd=workdir, capture_output=True, text=True, timeout=60, check=False
    )


def bindep_packages(text, profiles):
    from bindep.depends import Depends  # installed with ansible-builder

    depends = Depends(text)
    return {rule[0] for rule in depends.active_rules(profiles + depends.platform_profiles())}


def requirement_names(lines):
    return {
        re.split(r"[<>=!~;\[ ]", line.strip(), maxsplit=1)[0].lower()
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    }


def clean_env(**extra):
    """The environment for ansible-galaxy/ansible-builder, as on an image build host: without the
    developer's ANSIBLE_COLLECTIONS_PATH and PYTHONPATH (make exports both, and both lead to
    build/collections), where ansible-galaxy would find this collection already "installed"
    and install nothing."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ANSIBLE_COLLECTIONS_PATH") and k != "PYTHONPATH"
    }
    env.update(extra)
    return env


def test_image_build_installs_the_collection_and_its_requirements_but_no_lab_package(
    ee_context, tmp_path
):
    build = ee_context / "_build"
    collections = tmp_path / "collections"
    env = clean_env(ANSIBLE_GALAXY_DISABLE_GPG_VERIFY="1", HOME=str(tmp_path))
    galaxy = subprocess.run(
        [
            tool("ansible-galaxy"),
            "collection",
            "install",
            "-r",
            "requirements.yml",
            "--collections-path",
            str(collections),
        ],
        cwd=build,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert galaxy.returncode == 0, galaxy.stdout + galaxy.stderr
    installed = collections / "ansible_collections" / "badgateway" / "k8s"
    for path in (
        "roles/diagnose_502/tasks/main.yml",
        "playbooks/diagnose_502.yml",
        "playbooks/drift_check.yml",
        "plugins/modules/proxy_info.py",
        "meta/runtime.yml",
        "MANIFEST.json",
    ):
        assert (installed / path).is_file(), path

    run = introspect(build / "scripts" / "introspect.py", collections, build, tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    pip_lines = (tmp_path / "out" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    wanted = requirement_names((ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines())
    assert wanted and wanted <= requirement_names(
        line for line in pip_lines if "from collection badgateway.k8s" in line
    )

    system = (tmp_path / "out" / "bindep.txt").read_text(encoding="utf-8")
    lab_only = bindep_packages((ROOT / "bindep.txt").read_text(encoding="utf-8"), ["test"])
    assert lab_only, "bindep.txt lists no [test] package: this check would prove nothing"
    assert bindep_packages(system, ["test"]) >= lab_only
    assert bindep_packages(system, ["default"]) & lab_only == set()


def test_collection_tarball_works_in_any_execution_environment(ee_context, tmp_path):
    """A third-party EE that installs the built collection finds its requirements by introspection
    (from the installed meta/execution-environment.yml), and only those of badgateway.k8s."""
    env = clean_env(HOME=str(tmp_path))
    built = subprocess.run(
        [tool("ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(ROOT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    tarball = next(tmp_path.glob("badgateway-k8s-*.tar.gz"))
    collections = tmp_path / "collections"
    installed = subprocess.run(
        [tool("ansible-galaxy"), "collection", "install", str(tarball), "-p", str(collections)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    run = introspect(
        ee_context / "_build" / "scripts" / "introspect.py",
        collections,
        tmp_path,
        tmp_path / "out",
        user=False,
    )
    assert (
        collections
        / "ansible_collections"
        / "badgateway"
        / "k8s"
        / "meta"
        / "execution-environment.yml"
    ).is_file()
    assert run.returncode == 0, (
        "ansible-builder's introspection fails on the built collection (it reads meta/execution-environment.yml "
        "and the files it names relative to the collection root):\n" + run.stdout + run.stderr
    )
    pip_lines = (tmp_path / "out" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    wanted = requirement_names((ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines())
    assert wanted and wanted <= requirement_names(
        line for line in pip_lines if "from collection badgateway.k8s" in line
    )
    system = (tmp_path / "out" / "bindep.txt").read_text(encoding="utf-8")
    assert "from collection badgateway.k8s" in system, "bindep.txt of the collection was not read"


# --- docs/awx.md against what ships ----------------------------------------------------------

AWX_DOC = ROOT / "docs" / "awx.md"


def published_artifacts(path):
    """Keys of every ``set_stats`` data in a task file or playbook, and the artifact every
    target's result is added to (module_utils/result.py's ARTIFACT) by each
    ``badgateway.k8s.diagnose_report`` step and each ``badgateway.k8s.diagnose`` step asked for
    the result."""
    from ansible_collections.badgateway.k8s.plugins.module_utils.result import ARTIFACT

    keys = set()

    def walk(node):
        if isinstance(node, dict):
            stats = node.get("ansible.builtin.set_stats") or node.get("set_stats")
            if isinstance(stats, dict):
                keys.update(stats.get("data", {}))
            diagnosis = node.get("badgateway.k8s.diagnose")
            if "badgateway.k8s.diagnose_report" in node or (
                isinstance(diagnosis, dict) and "result" in diagnosis
            ):
                keys.add(ARTIFACT)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    return keys


def test_awx_doc_file_table_lists_every_shipped_awx_file_and_only_those():
    doc = AWX_DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"^\| `((?:awx|meta)/[\w./-]+)` \|", doc, flags=re.MULTILINE))
    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / "awx").iterdir() if p.is_file()} | {
        str(EE_DEPENDENCIES.relative_to(ROOT))
    }
    assert named == shipped


def test_awx_doc_artifact_table_is_what_the_playbooks_publish():
    doc = AWX_DOC.read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(\w+\.yml)` \| `(\w+)` \|", doc, flags=re.MULTILINE))
    role_tasks = ROOT / "roles" / "diagnose_502" / "tasks"
    diagnose_files = [ROOT / "playbooks" / "diagnose_502.yml", *role_tasks.glob("*.yml")]
    published = {
        ("diagnose_502.yml", key) for f in diagnose_files for key in published_artifacts(f)
    }
    published |= {("drift_check.yml", key) for key in published_artifacts(DRIFT_PLAYBOOK)}
    assert rows and rows == published


def test_awx_doc_credential_variables_are_the_ones_the_modules_read():
    doc = AWX_DOC.read_text(encoding="utf-8")
    injected = set(re.findall(r"^\| `(K8S_AUTH_\w+)` \|", doc, flags=re.MULTILINE))
    assert injected == {
        "K8S_AUTH_HOST",
        "K8S_AUTH_API_KEY",
        "K8S_AUTH_VERIFY_SSL",
        "K8S_AUTH_SSL_CA_CERT",
    }
    read = set(
        re.findall(
            r"K8S_AUTH_\w+",
            (ROOT / "plugins" / "module_utils" / "k8s_access.py").read_text(encoding="utf-8"),
        )
    )
    assert injected <= read


@pytest.mark.parametrize("name", sorted(SURVEYS))
def test_awx_doc_describes_the_survey_defaults_that_differ_from_the_role(name):
    """A survey default that is not the role's default is a choice the doc must state."""
    doc = AWX_DOC.read_text(encoding="utf-8")
    options = role_options()
    for question in load_survey(name)["spec"]:
        option = options.get(question["variable"], {})
        if (
            "default" in question
            and "default" in option
            and not default_matches(question, option["default"])
        ):
            assert f"default {question['default']}" in doc, question["variable"]
