//! Compiling patched trees with arbitrary conf-qmail and ids, and reading
//! their hier().

mod common;

use qmail_build::hier::{record, EntryKind, Package};
use qmail_build::{compile_mess822, compile_netqmail, CompileOptions, IdMap};
use qmail_patches::prepare_tree;
use upstream_hashes::{SourceTree, MESS822, NETQMAIL};

#[test]
fn netqmail_compiles_with_given_ids_and_prefix() {
    let Some(src) = common::netqmail() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let tree = prepare_tree(&SourceTree::unverified(&NETQMAIL, src), &[], work.path()).unwrap();
    let ids = IdMap {
        uids: [7001, 7002, 7003, 0, 7005, 7006, 7007, 7008],
        gids: [7100, 7101],
    };
    let opts = CompileOptions::new("/opt/qtk-test-prefix", ids);
    compile_netqmail(&tree, &opts).unwrap();
    for prog in ["qmail-smtpd", "qmail-local", "qmail-send", "instcheck"] {
        assert!(tree.join(prog).is_file(), "{prog} not built");
    }
    let uids = std::fs::read_to_string(tree.join("auto_uids.c")).unwrap();
    assert!(uids.contains("int auto_uida = 7001;"));
    let bin = std::fs::read(tree.join("qmail-local")).unwrap();
    assert!(
        bin.windows(20).any(|w| w == b"/opt/qtk-test-prefix"),
        "conf-qmail not compiled into qmail-local"
    );
    // The hier() of the same tree: every entry under the prefix, with
    // users by name.
    let entries = record(&tree, Package::Netqmail).unwrap();
    assert!(entries.len() > 150, "{} entries", entries.len());
    assert!(entries.iter().all(|e| e.home == "/opt/qtk-test-prefix"));
    let alias = entries.iter().find(|e| e.path == "alias").unwrap();
    assert_eq!(
        (alias.user, alias.group, alias.mode),
        (Some("alias"), Some("qmail"), 0o2755)
    );
    assert_eq!(alias.uid(&ids), Some(7001));
    let smtpd = entries
        .iter()
        .find(|e| e.path == "bin/qmail-smtpd")
        .unwrap();
    assert_eq!(
        smtpd.kind,
        EntryKind::File {
            source: "qmail-smtpd".into()
        }
    );

    // Recompiling with other ids changes auto_uids and relinks.
    let ids2 = IdMap::uniform(4242, 4343);
    compile_netqmail(&tree, &CompileOptions::new("/opt/qtk-test-prefix", ids2)).unwrap();
    let uids = std::fs::read_to_string(tree.join("auto_uids.c")).unwrap();
    assert!(uids.contains("int auto_uida = 4242;"));
}

#[test]
fn mess822_compiles_after_errno_and_nonroot() {
    let Some(src) = common::mess822() else { return };
    let work = tempfile::tempdir().unwrap();
    let defs = qmail_patches::select(&["errno".into(), "nonroot".into()]).unwrap();
    let tree = prepare_tree(&SourceTree::unverified(&MESS822, src), &defs, work.path()).unwrap();
    let opts = CompileOptions::new("/opt/qtk-m8", IdMap::build_user());
    compile_mess822(&tree, &opts).unwrap();
    assert!(tree.join("822date").is_file());
    let entries = record(&tree, Package::Mess822).unwrap();
    assert!(
        entries.iter().all(|e| e.home == "/opt/qtk-m8"),
        "an entry leaves conf-home"
    );
    assert!(!entries.iter().any(|e| e.path.contains("leapsecs")));
}
