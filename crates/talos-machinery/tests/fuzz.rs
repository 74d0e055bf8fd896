//! Property tests: the parsers never panic on arbitrary input, and the canonical emitter
//! writes YAML that reads back to the same schematic (a fixed point, as the factory's
//! decode→encode step is).

use std::collections::BTreeMap;

use proptest::prelude::*;
use talos_machinery::{patch, schematic, selector};

/// Text biased towards YAML syntax so the fuzzing reaches past the tokenizer.
fn yamlish() -> impl Strategy<Value = String> {
    let atoms = prop_oneof![
        Just("customization:".to_string()),
        Just("overlay:".to_string()),
        Just("machine:".to_string()),
        Just("cluster:".to_string()),
        Just("apiVersion: v1alpha1".to_string()),
        Just("kind: KubeTalosAPIAccessConfig".to_string()),
        Just("extraKernelArgs:".to_string()),
        Just("officialExtensions:".to_string()),
        Just("meta:".to_string()),
        Just("- key: 0xa".to_string()),
        Just("value: x".to_string()),
        Just("token: a".to_string()),
        Just("$patch: delete".to_string()),
        Just("---".to_string()),
        Just("&a".to_string()),
        Just("*a".to_string()),
        Just("<<: *a".to_string()),
        Just("!!str".to_string()),
        Just("|".to_string()),
        Just(">-".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("\"q\\t\"".to_string()),
        Just("'s'".to_string()),
        Just("~".to_string()),
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just("\t".to_string()),
        Just(": ".to_string()),
        Just("- ".to_string()),
        Just("# c".to_string()),
        "[a-z0-9 .:_/-]{0,8}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(atoms, 0..40).prop_map(|v| v.concat())
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), yamlish()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2500, .. ProptestConfig::default() })]

    #[test]
    fn schematic_parse_never_panics(input in any_text()) {
        let _ = schematic::parse(&input);
    }

    #[test]
    fn patch_validation_never_panics(input in any_text()) {
        let _ = patch::validate_config_patch(&input);
        let _ = patch::normalize(&input);
    }

    #[test]
    fn selector_parse_never_panics(input in any_text()) {
        if let Ok(q) = selector::parse_selector(&input) {
            let mut labels = BTreeMap::new();
            labels.insert("a".to_string(), input.clone());
            let _ = q.matches(&labels);
        }
    }

    #[test]
    fn normalize_is_idempotent(input in yamlish()) {
        if let Ok(n) = patch::normalize(&input) {
            let again = patch::normalize(&n);
            prop_assert_eq!(Ok(n.clone()), again, "normalized text: {:?}", n);
        }
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,12}",
        prop::sample::select(vec![
            "",
            "yes",
            "on",
            "~",
            "null",
            "true",
            "10",
            "0x1F",
            "1:20",
            "<<",
            "- a",
            "a: b",
            "#x",
            "'q",
            "\"q",
            " lead",
            "trail ",
            "a\nb",
            "a\nb\n",
            " a\nb",
            "\n",
            "a\n\n",
            "x\ty",
            "café",
            "\u{85}",
            "\u{feff}",
            "1e3",
            ".5",
            "2024-01-01",
            "---",
            "...",
        ])
        .prop_map(str::to_string),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn canonical_yaml_reads_back_to_the_same_schematic(
        exts in prop::collection::vec(text(), 0..4),
        args in prop::collection::vec(text(), 0..4),
        meta in prop::collection::btree_map(any::<u8>(), text(), 0..3),
        overlay_name in text(),
        overlay_image in text(),
        option_key in text(),
        option_value in text(),
        embedded in text(),
        enroll in text(),
        wk in any::<bool>(),
        sector in prop::sample::select(vec![0u64, 512, 4096]),
    ) {
        let mut s = schematic::SchematicBuilder::new()
            .extensions(exts)
            .extra_kernel_args(args)
            .meta(&meta)
            .overlay(&overlay_name, &overlay_image, vec![(option_key, schematic::Value::String(option_value))])
            .secureboot_include_well_known_certificates(wk)
            .embedded_machine_configuration(&embedded)
            .disk_image_sector_size(sector)
            .build()
            .unwrap();
        s.customization.secureboot.enroll_keys = enroll;
        let canonical = s.canonical_yaml();
        // go-yaml writes the indentation indicator as its best indent (4) even inside a
        // sequence item or a nested mapping whose content sits elsewhere, so such output does
        // not read back; the factory hashes it anyway. Reproduce, but do not round-trip it.
        prop_assume!(!canonical.contains("- |4") && !canonical.contains("value: |4"));
        let back = schematic::parse(&canonical);
        prop_assert!(back.is_ok(), "canonical {:?} rejected: {:?}", canonical, back);
        let back = back.unwrap();
        prop_assert_eq!(&back, &s, "canonical {:?}", canonical);
        prop_assert_eq!(back.canonical_yaml(), canonical);
    }
}
