//! The branch patch: `?LABEL [COMMAND]` and `:LABEL` lines in `.qmail`
//! files, for qmail-local (spec/branch.md, Part 1).
//!
//! The decision logic that does not run commands (classify a line, find
//! the target of a jump) is the self-contained C in `patches/c/qbranch.c`,
//! which the patch adds; the patch hooks it into `qmail-local.c`'s
//! instruction loop, links `qbranch.o` into qmail-local (Makefile; TARGETS
//! and FILES list the new files) and documents the new lines in
//! `dot-qmail.9` (in full) and `qmail-local.8` (a summary, and what `-n`
//! does with them).

use upstream_hashes::SourceTree;

use crate::qmail_release::layout;
use crate::{FileChange, Patch, PatchError, Pristine};

/// The C core the patch adds.
pub const QBRANCH_C: &str = include_str!("../c/qbranch.c");
/// The header of the C core the patch adds.
pub const QBRANCH_H: &str = include_str!("../c/qbranch.h");

/// The description; `{RELEASE}` becomes the release's full name.
const DESCRIPTION: &str = "\
{RELEASE} branch patch: forward jumps in .qmail files.

  ?LABEL            jump forward to the line after the next :LABEL line
  ?LABEL COMMAND    run COMMAND as a |COMMAND line; exit 99 jumps
  :LABEL anything   a jump target, otherwise a comment

A label that is never found skips all following lines. Adds qbranch.c and
qbranch.h (the line parser and jump-target search), hooks them into
qmail-local's instruction loop, and documents the lines in dot-qmail.9
and qmail-local.8.
Apply with `patch -p1` in the {RELEASE} directory.";

/// Generate the branch patch from a pristine tree of a qmail release
/// (netqmail-1.06 or notqmail-1.09, from `src.release`): the same hooks
/// and anchors for both; `FILES` is edited only where the release has one
/// ([`crate::qmail_release`]). A release that is not qmail is refused.
pub fn generate(src: &SourceTree) -> Result<Patch, PatchError> {
    let layout = layout("branch", src.release)?;
    src.must_not_exist("qbranch.c")?;
    src.must_not_exist("qbranch.h")?;
    let mut changes = vec![qmail_local(src)?, makefile(src)?, targets(src)?];
    if layout.files_list {
        changes.push(files(src)?);
    }
    changes.extend(man_pages(src)?);
    changes.push(FileChange::added("qbranch.c", QBRANCH_C));
    changes.push(FileChange::added("qbranch.h", QBRANCH_H));
    let release = layout.release;
    Ok(Patch {
        file_name: format!("{}-branch.patch", release.full_name),
        release,
        description: DESCRIPTION.replace("{RELEASE}", release.full_name),
        files: changes,
    })
}

fn qmail_local(src: &SourceTree) -> Result<FileChange, PatchError> {
    let mut ed = src.edit("qmail-local.c")?;
    ed.insert_after("#include \"auto_patrn.h\"\n", "#include \"qbranch.h\"\n")?;
    ed.insert_after(
        " int flagforwardonly;\n",
        " struct qbranch_line bl;\n size_t skipto;\n size_t next;\n",
    )?;
    ed.insert_after(" flag99 = 0;\n", " skipto = 0;\n")?;
    ed.insert_before(
        "     cmds.s[j] = 0;\n",
        "     if ((size_t) i < skipto) { i = j + 1; continue; } /* jumped over */\n",
    )?;
    ed.insert_before(
        "       case '+':\n",
        "       case '?':
       case ':':
         switch(qbranch_parse(cmds.s + i,k - i,&bl))
          {
           case QBRANCH_COND:
             ++count_program;
             if (flagforwardonly) strerr_die1x(111,\"Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)\");
             if (!flagdoit) { sayit(\"program \",cmds.s + i + bl.cmd,bl.cmdlen); break; }
             mailprogram(cmds.s + i + bl.cmd);
             if (!flag99) break;
             flag99 = 0; /* exit 99 from a ? command jumps instead of stopping */
             qbranch_find(cmds.s,cmds.len,j + 1,cmds.s + i + bl.label,bl.labellen,&next);
             skipto = next;
             break;
           case QBRANCH_JUMP:
             qbranch_find(cmds.s,cmds.len,j + 1,cmds.s + i + bl.label,bl.labellen,&next);
             skipto = next;
             break;
          }
         break;
",
    )?;
    Ok(ed.finish())
}

fn makefile(src: &SourceTree) -> Result<FileChange, PatchError> {
    let mut ed = src.edit("Makefile")?;
    ed.insert_before(
        "qmail-local: \\\n",
        "qbranch.o: \\\ncompile qbranch.c qbranch.h\n\t./compile qbranch.c\n\n",
    )?;
    ed.replace(
        "load qmail-local.o qmail.o quote.o",
        "load qmail-local.o qbranch.o qmail.o quote.o",
    )?;
    ed.replace(
        "./load qmail-local qmail.o quote.o",
        "./load qmail-local qbranch.o qmail.o quote.o",
    )?;
    ed.replace(
        "myctime.h gfrom.h auto_patrn.h\n\t./compile qmail-local.c",
        "myctime.h gfrom.h auto_patrn.h qbranch.h\n\t./compile qmail-local.c",
    )?;
    Ok(ed.finish())
}

fn targets(src: &SourceTree) -> Result<FileChange, PatchError> {
    let mut ed = src.edit("TARGETS")?;
    ed.insert_after("\nqmail-local.o\n", "qbranch.o\n")?;
    Ok(ed.finish())
}

fn files(src: &SourceTree) -> Result<FileChange, PatchError> {
    let mut ed = src.edit("FILES")?;
    ed.insert_after("\nqmail-local.c\n", "qbranch.h\nqbranch.c\n")?;
    Ok(ed.finish())
}

fn dot_qmail(src: &SourceTree) -> Result<FileChange, PatchError> {
    let mut ed = src.edit("dot-qmail.9")?;
    ed.replace(
        "There are five types of delivery instructions:\n\
         (1) comment; (2) program; (3) forward; (4) mbox; (5) maildir.\n",
        "There are seven types of delivery instructions:\n\
         (1) comment; (2) program; (3) forward; (4) mbox; (5) maildir;\n\
         (6) branch; (7) label.\n",
    )?;
    ed.insert_after("for more details.\n", MAN_BRANCH)?;
    ed.replace(
        "program lines,\n.I mbox\n",
        "program lines,\nbranch lines with a command,\n.I mbox\n",
    )?;
    ed.insert_after(
        "but it still pays attention to previous forward lines.\n",
        MAN_ERRORS,
    )?;
    Ok(ed.finish())
}

/// The man-page part of the patch (also in [`generate`]): `dot-qmail.9`
/// and `qmail-local.8`, in that order. Needs only those two files in
/// `src`.
pub fn man_pages(src: &SourceTree) -> Result<Vec<FileChange>, PatchError> {
    Ok(vec![dot_qmail(src)?, local_man(src)?])
}

fn local_man(src: &SourceTree) -> Result<FileChange, PatchError> {
    let mut ed = src.edit("qmail-local.8")?;
    ed.insert_after("can read it more than once.\n", MAN_LOCAL)?;
    ed.insert_after(
        "print a description of the delivery instructions.\n",
        MAN_LOCAL_N,
    )?;
    Ok(ed.finish())
}

/// qmail-local.8: the branch and label lines, in short.
const MAN_LOCAL: &str = r"
Besides the delivery instructions described in
.BR dot-qmail(5) ,
.B qmail-local
follows branch and label lines:

.EX
     ?\fIlabel\fP \fIcommand\fP
.br
     ?\fIlabel\fP
.br
     :\fIlabel\fP \fIanything\fP
.EE

A branch line with a
.I command
runs it exactly as a program line would;
if it exits 99,
.B qmail-local
jumps.
A branch line without a command always jumps.
To jump,
.B qmail-local
skips forward past the first later label line with the same
.I label
(bytes compared exactly, so case matters)
and goes on with the line after it;
if there is no such line, it skips all the remaining lines.
Skipped lines deliver nothing, and their forward addresses are not used.
A label line is otherwise a comment.
";

/// qmail-local.8, option -n: what it prints for branch lines.
const MAN_LOCAL_N: &str = r"A branch line with a command is printed as a program line,
and
.B qmail-local
does not jump after it;
a branch line without a command jumps;
label lines print nothing.
";

const MAN_BRANCH: &str = r".TP 5
(6)
A branch line begins with a question mark and a
.IR label ,
optionally followed by spaces or tabs and a command:

.EX
     ?spam /usr/local/bin/isspam
.br
     ?done
.EE

The label is everything after the question mark
up to the first space or tab, or the end of the line.
It may be empty.
Labels are compared byte for byte, so case matters.

If the line has a command,
.B qmail-local
runs it exactly as it runs the command of a program line.
If the command exits 99,
.B qmail-local
jumps (see below);
any other exit code means what it means for a program line.
A branch line without a command always jumps.

To jump,
.B qmail-local
skips every following line
up to and including the first later label line with the same label,
and goes on with the line after it.
If there is no such line, it skips all the remaining lines;
forward lines before the branch line are still used.
Jumps only go forward.
Skipped lines are ignored completely:
they deliver nothing, their forward addresses are not used, and a
.B +list
line among them has no effect.

.B qmail-local -n
prints a branch line that has a command as a program line
and does not jump after it;
it does jump at a branch line without a command.
.TP 5
(7)
A label line begins with a colon and a label,
optionally followed by a space or tab and any text:

.EX
     :spam this is where spam goes
.EE

It is the place where branch lines with the same label jump to.
Otherwise
.B qmail-local
ignores it, like a comment.

For example, this
.B .qmail
file delivers spam to one maildir and everything else to another:

.EX
     ?spam /usr/local/bin/isspam
.br
     ./Maildir/
.br
     ?end
.br
     :spam
.br
     ./Spam/
.br
     :end
.EE

Here
.B isspam
exits 99 for spam and 0 for other mail.
";

const MAN_ERRORS: &str = r"
If the command of a branch line returns exit code 99,
.B qmail-local
does not ignore the succeeding lines:
it jumps to the line after the matching label line, as described above.
";
