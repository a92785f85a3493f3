"""MLPerf inference v5.1's submission format, for the ``mlperf-v5.1`` rule set (and our own rule sets).

The layout (``closed/<Org>/...``), the exact file sets and the ``systems/<system>.json`` fields are
those of MLPerf's v5.1.1 submission checker (``tools/submission/submission_checker.py`` at tag
v5.1.1): a run folder holds exactly its set (LoadGen's trace file, ``results.json`` and
``.gitkeep`` are tolerated), the system description has every required key and a value in each
"meaningful" one, and the tree holds no symlinks, no empty folders, no names with spaces or a
leading dot, no file over 50 MB and no accuracy log over 10 KiB.

A later round is one more module like this one: ``FORMAT = dataclasses.replace(mlperf_v5_1.FORMAT,
version=..., <what changed>)`` and one line in ``suite.submission.FORMATS``.
"""

from __future__ import annotations

from suite.results import ACCURACY_LOG, DETAIL, SUMMARY
from suite.submission.format import SubmissionFormat

FORMAT = SubmissionFormat(
    version="v5.1",
    divisions=("closed", "open"),
    statuses=("available", "preview", "rdi"),
    system_types=("datacenter", "edge", "datacenter,edge", "edge,datacenter"),
    org_folders=("code", "systems", "results", "measurements", "compliance", "documentation"),
    code_dir="code",
    results_hold_audits=False,
    measurements_name="{system}.json",
    scenario_extras=frozenset(),
    # SYSTEM_DESC_REQUIRED_FIELDS: every key must be present.
    system_fields=(
        "division", "submitter", "status", "system_name", "number_of_nodes", "host_processor_model_name",
        "host_processors_per_node", "host_processor_core_count", "host_memory_capacity", "host_storage_capacity",
        "host_storage_type", "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
        "framework", "operating_system", "system_type", "other_software_stack", "host_processor_frequency",
        "host_processor_caches", "host_memory_configuration", "host_processor_interconnect", "host_networking",
        "host_networking_topology", "accelerator_frequency", "accelerator_host_interconnect", "accelerator_interconnect",
        "accelerator_interconnect_topology", "accelerator_memory_configuration", "accelerator_on-chip_memories",
        "cooling", "hw_notes", "sw_notes", "host_network_card_count", "system_type_detail",
    ),
    # SYSTEM_DESC_MEANINGFUL_RESPONSE_REQUIRED_FIELDS: these must also be non-empty.
    system_meaningful_fields=(
        "division", "submitter", "system_type", "status", "system_name", "number_of_nodes",
        "host_processor_model_name", "host_processors_per_node", "host_processor_core_count", "host_memory_capacity",
        "host_memory_configuration", "host_storage_capacity", "host_storage_type", "host_networking",
        "host_network_card_count", "host_networking_topology", "accelerators_per_node", "accelerator_model_name",
        "accelerator_memory_capacity", "accelerator_host_interconnect", "accelerator_memory_configuration",
        "accelerator_interconnect", "cooling", "framework", "operating_system", "other_software_stack",
    ),
    # SYSTEM_IMP_REQUIRED_FILES: the keys of a measurements JSON, all non-empty.
    measurement_fields=(
        "input_data_types", "retraining", "starting_weights_filename", "weight_data_types", "weight_transformations",
    ),
    measurement_files=("user.conf", "README.md"),
    performance_set=frozenset({DETAIL, SUMMARY}),
    performance_optional=frozenset({ACCURACY_LOG}),
    accuracy_set=frozenset({DETAIL, SUMMARY, "accuracy.txt", ACCURACY_LOG}),
    # Extras the v5.1.1 checker lets a run folder hold.
    tolerated=frozenset({"mlperf_log_trace.json", "results.json", ".gitkeep"}),
    audit_sets={
        "TEST01": frozenset({
            "verify_accuracy.txt", "verify_performance.txt", f"performance/run_1/{DETAIL}", f"performance/run_1/{SUMMARY}",
            f"accuracy/{ACCURACY_LOG}", "accuracy/accuracy.txt",
        }),
        "TEST04": frozenset({"verify_performance.txt", f"performance/run_1/{DETAIL}", f"performance/run_1/{SUMMARY}"}),
        "TEST05": frozenset({"verify_performance.txt", f"performance/run_1/{DETAIL}", f"performance/run_1/{SUMMARY}"}),
    },
    # TEST01's fallback files (the AUC of the sampled queries) may join its accuracy folder.
    audit_optional=frozenset({"accuracy/baseline_accuracy.txt", "accuracy/compliance_accuracy.txt"}),
    file_size_limit_bytes=50 * 1024 * 1024,
    max_accuracy_log_bytes=10 * 1024,
    # The summary CSV's columns, as MLPerf's v5.1.1 checker writes them, and the ones it quotes.
    csv_columns=(
        "Organization", "Availability", "Division", "SystemType", "SystemName", "Platform", "Model", "MlperfModel",
        "Scenario", "Result", "Accuracy", "number_of_nodes", "host_processor_model_name", "host_processors_per_node",
        "host_processor_core_count", "accelerator_model_name", "accelerators_per_node", "Location", "framework",
        "operating_system", "notes", "compliance", "errors", "version", "inferred", "has_power", "Units",
        "weight_data_types",
    ),
    csv_quoted=frozenset({
        "SystemType", "SystemName", "host_processor_model_name", "accelerator_model_name", "accelerators_per_node",
        "framework", "operating_system", "notes", "weight_data_types",
    }),
    checked_divisions=("closed", "open", "network"),
    root_allowed_suffixes=(".md", ".pdf"),
    root_ignored_dirs=(".git", ".github", "assets"),
    # SYSTEM_DESC_REQUIRED_FIELDS_NETWORK_MODE: required where is_network is true.
    network_fields=(
        "is_network", "network_type", "network_media", "network_rate", "nic_loadgen", "number_nic_loadgen",
        "net_software_stack_loadgen", "network_protocol", "number_connections", "nic_sut", "number_nic_sut",
        "net_software_stack_sut", "network_topology",
    ),
    network_sut_substring="Network SUT",
    power_files=frozenset({"client.json", "client.log", "ptd_logs.txt", "server.json", "server.log"}),
    power_run_files=frozenset({"spl.txt"}),
    power_measurement_patterns=("analyzer_table.*", "power_settings.*"),  # REQUIRED_POWER_MEASURE_FILES, as regexes
)  # fmt: skip
