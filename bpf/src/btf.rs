//! A minimal reader of the kernel's BTF that finds struct member offsets.
//!
//! aya-ebpf cannot emit CO-RE relocations, so the kernel cannot fix up field
//! offsets in our eBPF programs at load time. Instead user space looks them up
//! here and hands them to the programs, which walk `task_struct` and friends
//! with `bpf_probe_read_kernel`. Format: the kernel's `Documentation/bpf/btf.rst`.

use std::{collections::HashMap, fmt};

/// Where the running kernel exposes its own type information.
const SYS_FS_PATH: &str = "/sys/kernel/btf/vmlinux";
/// Real types nest a few levels; the bound stops garbage input in which a type
/// contains itself from recursing forever.
const MAX_NESTING: usize = 32;
const KIND_STRUCT: u8 = 4;
const KIND_UNION: u8 = 5;

type Result<T> = std::result::Result<T, BtfError>;

/// Why BTF could not be read, or did not answer a question.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BtfError {
    /// `/sys/kernel/btf/vmlinux` could not be read (kernel built without BTF?).
    #[error("cannot read {SYS_FS_PATH}")]
    Io(#[source] std::io::Error),
    /// The bytes are not valid BTF: wrong magic or version, or out of bounds.
    #[error("malformed BTF: {0}")]
    Malformed(String),
    /// No struct of that name has members (struct, member).
    #[error("BTF has no struct `{0}` (looking for its member `{1}`)")]
    NoStruct(String, String),
    /// The struct lacks the member, even in anonymous members (struct, member).
    #[error("struct `{0}` has no member `{1}`")]
    NoMember(String, String),
    /// A probe read cannot fetch a bitfield or a member off a byte boundary
    /// (struct, member, bit offset).
    #[error("`{0}.{1}` is a bitfield or not byte aligned (bit offset {2})")]
    NotByteAligned(String, String, u32),
}

fn malformed(what: impl Into<String>) -> BtfError {
    BtfError::Malformed(what.into())
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32> {
    let word = at.checked_add(4).and_then(|end| bytes.get(at..end));
    let word = word.and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    word.ok_or_else(|| malformed(format!("read past the end at byte {at}")))
}

/// The NUL-terminated string at `off` in the string section.
fn name_at(strings: &[u8], off: u32) -> Result<&[u8]> {
    let rest = strings.get(off as usize..).unwrap_or_default();
    let name = rest.iter().position(|&b| b == 0).map(|len| &rest[..len]);
    name.ok_or_else(|| malformed(format!("bad name offset {off}")))
}

/// Parsed kernel BTF: the raw sections, plus what lookups need to find types.
pub struct KernelBtf {
    /// The type section, already walked and bounds checked once.
    types: Vec<u8>,
    /// Where in `types` type id `n` starts, at index `n - 1` (id 0 is `void`).
    starts: Vec<usize>,
    strings: Vec<u8>,
    /// First STRUCT with members per name: FWDs and later duplicates never win.
    structs: HashMap<Vec<u8>, u32>,
}

impl fmt::Debug for KernelBtf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KernelBtf({} types)", self.starts.len())
    }
}

impl KernelBtf {
    /// Parses BTF bytes, which must be little-endian (the kernel writes host
    /// order, and Stockade runs on little-endian hosts). Every read is bounds
    /// checked, so arbitrary input yields an error, never a panic.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.get(..3) != Some(&[0x9f, 0xeb, 1][..]) {
            return Err(malformed("no little-endian 0xeb9f magic and version 1"));
        }
        let hdr_len = u32_at(bytes, 4)? as usize;
        // Version 1 has 24 bytes of header; later kernels may append fields.
        if hdr_len < 24 || hdr_len > bytes.len() {
            return Err(malformed(format!("header length {hdr_len}")));
        }
        let section = |at: usize| -> Result<Vec<u8>> {
            let (off, len) = (u32_at(bytes, at)? as usize, u32_at(bytes, at + 4)? as usize);
            let start = hdr_len.checked_add(off);
            let section = start.and_then(|s| bytes.get(s..s.checked_add(len)?));
            let section = section.map(<[u8]>::to_vec);
            section.ok_or_else(|| malformed(format!("section {off}+{len} past the end")))
        };
        let (types, strings) = (section(8)?, section(16)?);
        let (mut starts, mut structs, mut pos) = (Vec::new(), HashMap::new(), 0);
        while pos < types.len() {
            let id = u32::try_from(starts.len() + 1).map_err(|_| malformed("too many types"))?;
            let info = u32_at(&types, pos + 4)?;
            let (kind, vlen) = (((info >> 24) & 0x1f) as u8, (info & 0xffff) as usize);
            // What follows each kind's 12-byte header.
            let trailing = match kind {
                1 | 14 | 17 => 4,                                // INT, VAR, DECL_TAG
                3 => 12,                                         // ARRAY
                KIND_STRUCT | KIND_UNION | 15 | 19 => vlen * 12, // STRUCT, UNION, DATASEC, ENUM64
                6 | 13 => vlen * 8,                              // ENUM, FUNC_PROTO
                2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, modifiers, FUNC, FLOAT, TYPE_TAG
                _ => return Err(malformed(format!("type {id} has unknown kind {kind}"))),
            };
            let end = pos + 12 + trailing;
            if end > types.len() {
                return Err(malformed(format!("type {id} runs past its section")));
            }
            let name = name_at(&strings, u32_at(&types, pos)?)?;
            if kind == KIND_STRUCT && vlen > 0 && !name.is_empty() {
                structs.entry(name.to_vec()).or_insert(id);
            }
            starts.push(pos);
            pos = end;
        }
        Ok(Self {
            types,
            starts,
            strings,
            structs,
        })
    }

    /// Reads the running kernel's BTF from `/sys/kernel/btf/vmlinux`.
    pub fn from_sys_fs() -> Result<Self> {
        Self::parse(&std::fs::read(SYS_FS_PATH).map_err(BtfError::Io)?)
    }

    /// Byte offset of `member` inside the struct named `strukt`, looking into
    /// anonymous nested structs and unions too, since the kernel moves fields
    /// into those (e.g. `mm_struct.exe_file` in recent kernels). Bitfields and
    /// members off a byte boundary are errors: a probe read cannot fetch them.
    pub fn member_offset(&self, strukt: &str, member: &str) -> Result<u32> {
        let id = self.structs.get(strukt.as_bytes()).copied();
        let found = id
            .map(|id| self.find(id, member.as_bytes(), 0))
            .transpose()?;
        let (strukt, member) = (strukt.to_owned(), member.to_owned());
        match found {
            None => Err(BtfError::NoStruct(strukt, member)),
            Some(None) => Err(BtfError::NoMember(strukt, member)),
            Some(Some((bits, 0))) if bits.is_multiple_of(8) => Ok(bits / 8),
            Some(Some((bits, _))) => Err(BtfError::NotByteAligned(strukt, member, bits)),
        }
    }

    /// Whether struct `strukt` has `member`, searched as by
    /// [`member_offset`](Self::member_offset), so callers can pick between
    /// fields that differ across kernel versions.
    pub fn has_member(&self, strukt: &str, member: &str) -> bool {
        let offset = self.member_offset(strukt, member);
        matches!(offset, Ok(_) | Err(BtfError::NotByteAligned(..)))
    }

    /// Searches type `id` for `member`, through anonymous members and through
    /// modifiers (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG), which can wrap
    /// an anonymous member's type: `-fms-extensions` embeds typedef'd structs.
    fn find(&self, id: u32, member: &[u8], depth: usize) -> Result<Option<(u32, u32)>> {
        let start = self.starts.get((id as usize).wrapping_sub(1));
        let start = *start.ok_or_else(|| malformed(format!("type id {id} is void or unknown")))?;
        if depth > MAX_NESTING {
            return Err(malformed(format!("type {id} nests too deep (a cycle?)")));
        }
        let word = |i: usize| u32_at(&self.types, start + 4 * i);
        let info = word(1)?;
        match ((info >> 24) & 0x1f) as u8 {
            8..=11 | 18 => return self.find(word(2)?, member, depth + 1),
            KIND_STRUCT | KIND_UNION => {}
            _ => return Ok(None),
        }
        for i in (3..).step_by(3).take((info & 0xffff) as usize) {
            let (name_off, type_id, offset) = (word(i)?, word(i + 1)?, word(i + 2)?);
            // With kind_flag set the top 8 bits hold the bitfield size. Without
            // it there are no bitfields: encoders (libbpf) set it for any struct
            // that has one.
            let (bits, bitfield_size) = match info >> 31 {
                1 => (offset & 0xff_ffff, offset >> 24),
                _ => (offset, 0),
            };
            let name = name_at(&self.strings, name_off)?;
            if name == member && !name.is_empty() {
                return Ok(Some((bits, bitfield_size)));
            }
            if name.is_empty() {
                if let Some((inner, size)) = self.find(type_id, member, depth + 1)? {
                    let bits = bits.checked_add(inner).ok_or_else(|| malformed("overflow"));
                    return Ok(Some((bits?, size)));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `struct outer { int a; union { int x; const struct { int pad; int target;
    /// int flags:3; }; }; int odd @ bit 140; }`, after every kind with trailing
    /// data (so a wrong skip shows up), a FWD and an empty `outer`, and before
    /// a second `outer` to ignore. `anon` is the union's anonymous member's
    /// type: 16, or 17 for a cycle.
    fn sample(anon: u32) -> Vec<u8> {
        let strings = b"\0int\0outer\0a\0x\0pad\0target\0flags\0odd\0e\0";
        let [int, outer, a, x, pad, target, flags, odd, e] = [1, 5, 11, 13, 15, 19, 26, 32, 36];
        let info = |kind: u32, vlen: u32, kind_flag: u32| kind_flag << 31 | kind << 24 | vlen;
        #[rustfmt::skip]
        let types = [
            vec![int, info(1, 0, 0), 4, 0x0100_0020],        // 1 INT, signed 32 bits
            vec![0, info(2, 0, 0), 1],                       // 2 PTR
            vec![0, info(3, 0, 0), 0, 1, 1, 4],              // 3 ARRAY
            vec![e, info(6, 2, 0), 4, a, 0, x, 1],           // 4 ENUM
            vec![0, info(13, 1, 0), 1, a, 1],                // 5 FUNC_PROTO
            vec![e, info(12, 0, 0), 5],                      // 6 FUNC
            vec![x, info(14, 0, 0), 1, 1],                   // 7 VAR
            vec![e, info(15, 1, 0), 4, 7, 0, 4],             // 8 DATASEC
            vec![e, info(17, 0, 0), 7, u32::MAX],            // 9 DECL_TAG
            vec![e, info(19, 1, 0), 8, a, 1, 0],             // 10 ENUM64
            vec![e, info(16, 0, 0), 8],                      // 11 FLOAT
            vec![e, info(18, 0, 0), 1],                      // 12 TYPE_TAG
            vec![outer, info(7, 0, 0), 0],                   // 13 FWD
            vec![outer, info(4, 0, 0), 0],                   // 14 empty STRUCT
            vec![0, info(4, 3, 1), 12, pad, 1, 0, target, 1, 32, flags, 1, 3 << 24 | 64],
            vec![0, info(10, 0, 0), 15],                     // 16 CONST
            vec![0, info(5, 2, 0), 12, x, 1, 0, 0, anon, 0], // 17 UNION
            vec![outer, info(4, 3, 0), 24, a, 1, 0, 0, 17, 64, odd, 1, 140],
            vec![outer, info(4, 1, 0), 4, target, 1, 0],     // 19 duplicate
        ]
        .concat();
        let (len, strings_len) = (types.len() as u32 * 4, strings.len() as u32);
        // Magic, version 1, flags 0; header length; type and string sections.
        let header = [0x0001_eb9f, 24, 0, len, len, strings_len];
        let words = header.into_iter().chain(types).flat_map(u32::to_le_bytes);
        words.chain(*strings).collect()
    }

    #[test]
    fn finds_members_through_anonymous_structs_and_unions() {
        let btf = KernelBtf::parse(&sample(16)).expect("sample parses");
        let offset = |m| btf.member_offset("outer", m).map_err(|e| e.to_string());
        let offsets = ["a", "x", "target"].map(|m| offset(m).ok());
        assert_eq!(offsets, [Some(0), Some(8), Some(12)]);
        let flags = "`outer.flags` is a bitfield or not byte aligned (bit offset 128)";
        assert_eq!(offset("flags"), Err(flags.to_owned()));
        assert!(offset("odd").is_err_and(|e| e.ends_with("(bit offset 140)")));
        let no = "struct `outer` has no member `no`";
        assert_eq!(offset("no"), Err(no.to_owned()));
        let no_struct = btf.member_offset("e", "a");
        assert!(
            matches!(no_struct, Err(BtfError::NoStruct(..))),
            "{no_struct:?}"
        );
        assert!(btf.has_member("outer", "target") && btf.has_member("outer", "odd"));
        assert!(!btf.has_member("outer", "") && !btf.has_member("int", "a"));
    }

    #[test]
    fn bad_input_is_an_error() {
        let blob = sample(16);
        for len in 0..blob.len() {
            assert!(KernelBtf::parse(&blob[..len]).is_err(), "{len} bytes");
        }
        let btf = KernelBtf::parse(&sample(17)).expect("a cycle still parses");
        let err = btf.member_offset("outer", "no").map_err(|e| e.to_string());
        assert!(
            err.as_ref().is_err_and(|e| e.ends_with("(a cycle?)")),
            "{err:?}"
        );
    }

    proptest! {
        #[test]
        fn garbage_never_panics(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut blob = sample(16);
            let len = blob.len();
            edits.into_iter().for_each(|(at, value)| blob[at % len] = value);
            if let Ok(btf) = KernelBtf::parse(&blob) {
                let _ = ["a", "x", "target", "flags", "odd", "no"].map(|m| btf.has_member("outer", m));
            }
        }
    }

    #[test]
    fn running_kernel_has_the_members_probes_walk() {
        let btf = KernelBtf::from_sys_fs().expect("this kernel exposes BTF");
        let walk = ["task_struct.mm", "mm_struct.exe_file", "file.f_inode"];
        let inode = ["inode.i_sb", "inode.i_ino", "super_block.s_dev"];
        for (strukt, member) in walk.iter().chain(&inode).filter_map(|p| p.split_once('.')) {
            let offset = btf.member_offset(strukt, member).expect("member exists");
            println!("{strukt}.{member} = {offset}");
            // All are pointers or integers of 4 bytes or more, and none is first.
            assert!(offset > 0 && offset.is_multiple_of(4) && offset < 16 * 1024);
        }
        let ctime = ["i_ctime", "__i_ctime", "i_ctime_sec", "i_ctime_nsec"];
        let present = ctime.map(|m| (m, btf.has_member("inode", m)));
        println!("inode ctime members: {present:?}");
        assert!(present.iter().any(|(_, has)| *has));
    }
}
