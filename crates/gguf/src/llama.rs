//! What llama.cpp refuses or mishandles in a header this reader accepts.
//!
//! The reader opens every file it can make sense of, because an editor must open broken files
//! to mend them. llama.cpp is stricter in some places (and looser in others), so a file that
//! opens here may still be one llama.cpp will not load. [`check_model`] and [`check_index`]
//! list those differences, each naming where in the file; `hotpatch inspect`, `hotpatch audit`,
//! the studio's Model screen and every save report them, so a file llama.cpp will refuse is
//! never passed silently.
//!
//! The rules are read from the llama.cpp sources of one build, [`LLAMA_CPP_BUILD`]
//! (`ggml/src/gguf.cpp` `gguf_init_from_reader` for the file format, `src/llama-model-loader.cpp`,
//! `src/llama-model.cpp` `load_hparams` and `src/llama-vocab.cpp` `load` for the model), the
//! one the tests' oracle runs. Other builds may differ in details (the type list grows, and
//! the architecture list too).
//!
//! ```
//! use hotpatch_gguf::{layout, llama, parse, MetaValue, TensorShape, TensorType};
//! use hotpatch_quant::GgmlType;
//! let meta = vec![("general.architecture".to_string(), MetaValue::string("llama"))];
//! let name = "x".repeat(64); // llama.cpp's GGML_MAX_NAME is 64, with the terminating NUL
//! let t = TensorShape { name: &name, ty: TensorType::Known(GgmlType::F32), dims: &[4], nbytes: 16 };
//! let lay = layout(3, &meta, &[t])?;
//! let mut file = lay.header.clone();
//! file.resize(lay.file_size as usize, 0);
//! let issues = llama::check_index(&parse(&file)?);
//! assert!(issues.iter().any(|i| i.code == "tensor-name-too-long" && i.refuses));
//! # Ok::<(), hotpatch_gguf::GgufError>(())
//! ```

use std::collections::BTreeSet;

use crate::index::{GgufIndex, MetadataEntry, TensorInfo, TensorType};
use crate::value::{MetaArray, MetaValue, ValueType};
use crate::GgufModel;

/// The llama.cpp build these rules were read from: the sources node-llama-cpp 3.22.1 ships
/// (its `llama/gitRelease.bundle`, commit de3ff815, ggml 0.5.0) — the same build whose
/// `libggml-base.so` and `libllama.so` the tests use as oracles.
pub const LLAMA_CPP_BUILD: &str =
    "llama.cpp de3ff815 (ggml 0.5.0, as shipped by node-llama-cpp 3.22.1)";

/// `GGML_MAX_NAME`: a tensor name must be shorter (it is stored with a NUL in 64 bytes).
pub const MAX_NAME: usize = 64;
/// `GGML_TYPE_COUNT` of [`LLAMA_CPP_BUILD`]: type ids at or above are refused.
pub const TYPE_COUNT: u32 = 43;
/// Type ids below [`TYPE_COUNT`] whose support was removed (block size 0 in ggml's table:
/// Q4_2, Q4_3, the Q4_0_x_y and IQ4_NL_x_y repacked layouts). llama.cpp refuses them.
pub const REMOVED_TYPES: &[(u32, &str)] = &[
    (4, "Q4_2"),
    (5, "Q4_3"),
    (31, "Q4_0_4_4"),
    (32, "Q4_0_4_8"),
    (33, "Q4_0_8_8"),
    (36, "IQ4_NL_4_4"),
    (37, "IQ4_NL_4_8"),
    (38, "IQ4_NL_8_8"),
];
/// Type ids llama.cpp's build knows that this build's codecs do not (they load in llama.cpp).
pub const NEWER_TYPES: &[(u32, &str)] = &[(42, "Q2_0")];
/// `GGUF_MAX_STRING_LENGTH` and `GGUF_MAX_ARRAY_ELEMENTS`: 2^30.
pub const MAX_STRING: u64 = 1 << 30;
/// See [`MAX_STRING`].
pub const MAX_ARRAY: u64 = 1 << 30;
/// `LLAMA_MAX_LAYERS`: `block_count` must be in 1..=512 (an assertion: llama.cpp aborts).
pub const MAX_LAYERS: u64 = 512;
/// The CPU buffer alignment: with mmap (the default) the data section must start at a
/// multiple of this many bytes.
pub const MMAP_ALIGNMENT: u64 = 32;
/// Vocabulary entries longer than this many bytes are flagged: real vocabularies stay far
/// below it, and huge token texts are how CVE-2025-49847 (token length cast to a signed
/// 32-bit int in `token_to_piece`) was reached.
pub const MAX_SANE_TOKEN_BYTES: usize = 1024;

/// The architectures `LLM_ARCH_NAMES` of [`LLAMA_CPP_BUILD`] lists (without `clip`, a dummy
/// only llama-quantize uses). Any other `general.architecture` is refused ("unknown model
/// architecture").
pub const ARCHITECTURES: &[&str] = &[
    "llama",
    "llama4",
    "deci",
    "falcon",
    "grok",
    "gpt2",
    "gptj",
    "gptneox",
    "mpt",
    "baichuan",
    "starcoder",
    "refact",
    "bert",
    "modern-bert",
    "nomic-bert",
    "nomic-bert-moe",
    "neo-bert",
    "jina-bert-v2",
    "jina-bert-v3",
    "eurobert",
    "bloom",
    "stablelm",
    "qwen",
    "qwen2",
    "qwen2moe",
    "qwen2vl",
    "qwen3",
    "qwen3moe",
    "qwen3next",
    "qwen3vl",
    "qwen3vlmoe",
    "qwen35",
    "qwen35moe",
    "qwen4exp",
    "phi2",
    "phi3",
    "phimoe",
    "plamo",
    "plamo2",
    "plamo3",
    "codeshell",
    "orion",
    "internlm2",
    "minicpm",
    "minicpm3",
    "gemma",
    "gemma2",
    "gemma3",
    "gemma3n",
    "gemma4",
    "gemma4-assistant",
    "gemma-embedding",
    "starcoder2",
    "mamba",
    "mamba2",
    "maple",
    "jamba",
    "falcon-h1",
    "xverse",
    "command-r",
    "cohere2",
    "cohere2moe",
    "dbrx",
    "olmo",
    "olmo2",
    "olmoe",
    "muse-glimmer",
    "openelm",
    "arctic",
    "deepseek",
    "deepseek2",
    "deepseek2-ocr",
    "deepseek32",
    "deepseek4",
    "chatglm",
    "glm4",
    "glm4moe",
    "glm-dsa",
    "bitnet",
    "t5",
    "t5encoder",
    "jais",
    "jais2",
    "nemotron",
    "nemotron_h",
    "nemotron_h_moe",
    "exaone",
    "exaone4",
    "exaone-moe",
    "rwkv6",
    "rwkv6qwen2",
    "rwkv7",
    "arwkv7",
    "granite",
    "granitemoe",
    "granitehybrid",
    "graniteswitch",
    "granite_swa",
    "chameleon",
    "wavtokenizer-dec",
    "plm",
    "bailingmoe",
    "bailingmoe2",
    "bailingmoe3",
    "dots1",
    "dots3note",
    "arcee",
    "afmoe",
    "laguna",
    "ernie4_5",
    "ernie4_5-moe",
    "hunyuan-moe",
    "hunyuan-dense",
    "hunyuan_vl",
    "hy_v3",
    "hy_v4",
    "smollm3",
    "gpt-oss",
    "lfm2",
    "lfm2moe",
    "dream",
    "smallthinker",
    "llada",
    "llada-moe",
    "seed_oss",
    "grovemoe",
    "apertus",
    "minimax-01",
    "hrm_text",
    "minimax-m2",
    "minimax-m3",
    "cogvlm",
    "rnd1",
    "pangu-embedded",
    "mistral3",
    "eagle3",
    "dflash",
    "mistral4",
    "paddleocr",
    "mimo2",
    "step35",
    "spark2_5",
    "llama-embed",
    "maincoder",
    "kimi-linear",
    "kimi-k3",
    "talkie",
    "mellum",
    "nanbeige",
    "qwen3tts",
    "pockettts",
];

/// The special-token keys llama.cpp reads (`LLM_KV_TOKENIZER_*_ID`), each a `UINT32`.
pub const SPECIAL_TOKEN_KEYS: &[&str] = &[
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.eot_token_id",
    "tokenizer.ggml.eom_token_id",
    "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.seperator_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.mask_token_id",
    "tokenizer.ggml.fim_pre_token_id",
    "tokenizer.ggml.fim_suf_token_id",
    "tokenizer.ggml.fim_mid_token_id",
    "tokenizer.ggml.fim_pad_token_id",
    "tokenizer.ggml.fim_rep_token_id",
    "tokenizer.ggml.fim_sep_token_id",
    "tokenizer.ggml.prefix_token_id",
    "tokenizer.ggml.suffix_token_id",
    "tokenizer.ggml.middle_token_id",
];

/// Per-layer hyperparameters llama.cpp reads as "one value, or an array of `block_count`".
const PER_LAYER_KEYS: &[&str] = &[
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "expert_used_count",
];

/// One way llama.cpp will treat the file differently from this reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaIssue {
    /// `true`: llama.cpp refuses to load the file (or aborts); `false`: it loads but
    /// mishandles something (ignores a value, falls back to a default).
    pub refuses: bool,
    /// A stable kebab-case code, e.g. `tensor-name-too-long`.
    pub code: &'static str,
    /// What is wrong, and what llama.cpp does about it (its own message where it has one).
    pub message: String,
    /// What it concerns: `tensor 'blk.0.attn_q.weight'`, `metadata 'llama.block_count'`.
    pub subject: String,
    /// Absolute byte offset in the file where the offending field starts, when there is one.
    pub offset: Option<u64>,
    /// Which file of a split model (0 for a single file).
    pub shard: usize,
}

impl LlamaIssue {
    fn refuse(code: &'static str, subject: String, offset: Option<u64>, message: String) -> Self {
        LlamaIssue {
            refuses: true,
            code,
            message,
            subject,
            offset,
            shard: 0,
        }
    }

    fn mishandle(
        code: &'static str,
        subject: String,
        offset: Option<u64>,
        message: String,
    ) -> Self {
        LlamaIssue {
            refuses: false,
            ..LlamaIssue::refuse(code, subject, offset, message)
        }
    }

    /// One line: `tensor 'x' at 0x1a0: message`.
    pub fn one_line(&self) -> String {
        let at = self
            .offset
            .map(|o| format!(" at {o:#x}"))
            .unwrap_or_default();
        let shard = if self.shard > 0 {
            format!(" (file {})", self.shard + 1)
        } else {
            String::new()
        };
        format!("{}{at}{shard}: {}", self.subject, self.message)
    }
}

/// Every issue of a whole model: the file rules for each file of a split model, then the
/// model rules (metadata of the first file, tensors of all files).
pub fn check_model(model: &GgufModel) -> Vec<LlamaIssue> {
    let mut out = Vec::new();
    for (i, shard) in model.shards.iter().enumerate() {
        out.extend(check_file(&shard.index).into_iter().map(|mut x| {
            x.shard = i;
            x
        }));
    }
    out.extend(check_loader(model.index(), &model.tensors));
    out
}

/// Every issue of one file holding a whole model (file rules then model rules).
pub fn check_index(index: &GgufIndex) -> Vec<LlamaIssue> {
    let mut out = check_file(index);
    out.extend(check_loader(index, &index.tensors));
    out
}

/// The rules of `gguf_init_from_reader` (ggml/src/gguf.cpp) that this reader does not apply:
/// the file format as llama.cpp reads it.
pub fn check_file(index: &GgufIndex) -> Vec<LlamaIssue> {
    let mut out = Vec::new();
    for e in &index.metadata {
        let subject = || format!("metadata '{}'", e.key);
        if e.key.is_empty() {
            out.push(LlamaIssue::refuse(
                "empty-key",
                subject(),
                Some(e.offset),
                "the key is empty; llama.cpp refuses the file (\"key is empty\")".into(),
            ));
        }
        check_value_limits(e, &mut out);
    }
    for t in &index.tensors {
        let subject = || format!("tensor '{}'", t.name);
        if t.name.len() >= MAX_NAME {
            out.push(LlamaIssue::refuse(
                "tensor-name-too-long",
                subject(),
                Some(t.info_offset),
                format!(
                    "the name is {} bytes; llama.cpp refuses names of {MAX_NAME} bytes or more \
                     (GGML_MAX_NAME)",
                    t.name.len()
                ),
            ));
        }
        if let TensorType::Unknown(id) = t.ty {
            if let Some(problem) = unknown_type_problem(id) {
                out.push(LlamaIssue::refuse(
                    "unknown-tensor-type",
                    subject(),
                    Some(type_offset(t)),
                    problem,
                ));
            }
        }
    }
    if let Some(issue) = check_data_layout(index) {
        out.push(issue);
    }
    if !index.tensors.is_empty() && !index.data_offset.is_multiple_of(MMAP_ALIGNMENT) {
        out.push(LlamaIssue::refuse(
            "data-misaligned-for-mmap",
            "tensor data section".into(),
            Some(index.data_offset),
            format!(
                "the data section starts at {:#x}, not a multiple of {MMAP_ALIGNMENT} bytes \
                 (general.alignment {}); mapping it (the default), llama.cpp aborts on an \
                 assertion (\"buffer pointer must be aligned\"); only --no-mmap may load it",
                index.data_offset, index.alignment
            ),
        ));
    }
    out
}

/// Why llama.cpp refuses a type id this build does not know, or `None` when it loads it.
pub fn unknown_type_problem(id: u32) -> Option<String> {
    if NEWER_TYPES.iter().any(|&(i, _)| i == id) {
        return None;
    }
    if let Some((_, name)) = REMOVED_TYPES.iter().find(|&&(i, _)| i == id) {
        return Some(format!(
            "type id {id} ({name}) was removed from ggml; llama.cpp refuses it (block size 0)"
        ));
    }
    Some(format!(
        "type id {id} is not a ggml type; llama.cpp refuses it (\"invalid ggml type\", ids \
         must be below {TYPE_COUNT})"
    ))
}

/// Where a tensor info's type id sits: after the name, the dimension count and the dims.
fn type_offset(t: &TensorInfo) -> u64 {
    t.info_offset + 8 + t.name.len() as u64 + 4 + 8 * t.dims.len() as u64
}

fn check_value_limits(e: &MetadataEntry, out: &mut Vec<LlamaIssue>) {
    let subject = || format!("metadata '{}'", e.key);
    match &e.value {
        MetaValue::String(s) if s.len() as u64 > MAX_STRING => out.push(LlamaIssue::refuse(
            "string-too-long",
            subject(),
            Some(e.value_offset),
            format!(
                "the string is {} bytes; llama.cpp refuses strings over {MAX_STRING} bytes",
                s.len()
            ),
        )),
        MetaValue::Array(a) => {
            if let MetaArray::Array(_) = a {
                out.push(LlamaIssue::refuse(
                    "nested-array",
                    subject(),
                    Some(e.value_offset),
                    "an array of arrays; llama.cpp refuses the file (\"invalid GGUF type 9\": it \
                     reads no nested arrays)"
                        .into(),
                ));
            }
            if a.len() as u64 > MAX_ARRAY {
                out.push(LlamaIssue::refuse(
                    "array-too-long",
                    subject(),
                    Some(e.value_offset),
                    format!(
                        "the array has {} elements; llama.cpp refuses more than {MAX_ARRAY}",
                        a.len()
                    ),
                ));
            }
            if let MetaArray::String(s) = a {
                if let Some((i, len)) = s
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (i, b.len()))
                    .find(|&(_, l)| l as u64 > MAX_STRING)
                {
                    out.push(LlamaIssue::refuse(
                        "string-too-long",
                        subject(),
                        Some(e.value_offset),
                        format!("string {i} is {len} bytes; llama.cpp refuses strings over {MAX_STRING} bytes"),
                    ));
                }
            }
        }
        _ => {}
    }
}

/// llama.cpp requires each tensor (in file order) to start exactly where the previous one
/// ended, padded to the alignment: no gap, no reordering, no overlap.
fn check_data_layout(index: &GgufIndex) -> Option<LlamaIssue> {
    let mut expected: u64 = 0;
    let mut first: Option<(usize, u64, u64)> = None;
    let mut wrong = 0usize;
    for (i, t) in index.tensors.iter().enumerate() {
        t.ty.known()?; // an unknown type is refused already, and its size is unknown
        let rel = t.offset - index.data_offset;
        if rel != expected {
            wrong += 1;
            if first.is_none() {
                first = Some((i, rel, expected));
            }
        }
        // Continue from where this tensor really is, so one moved tensor counts once.
        expected = crate::read::align_up(rel.checked_add(t.nbytes)?, index.alignment)?;
    }
    let (i, rel, want) = first?;
    let t = &index.tensors[i];
    let filled_by = index.tensors[i + 1..]
        .iter()
        .find(|o| o.offset - index.data_offset == want);
    let how = if let (true, Some(o)) = (rel > want, filled_by) {
        format!(
            "the data of '{}', later in the index, is there (tensors out of order)",
            o.name
        )
    } else if rel > want {
        format!("a gap of {} bytes before it", rel - want)
    } else {
        "it starts before the previous tensor's data ends (tensors out of order)".to_string()
    };
    let more = if wrong > 1 {
        format!(" ({wrong} tensors are not where llama.cpp expects them)")
    } else {
        String::new()
    };
    Some(LlamaIssue::refuse(
        "tensor-data-layout",
        format!("tensor '{}'", t.name),
        Some(t.info_offset),
        format!(
            "data at relative offset {rel} where llama.cpp expects {want}: {how}; llama.cpp \
             requires tensor data in index order, each padded to {} bytes, and refuses the \
             file (\"has offset {rel}, expected {want}\"){more}",
            index.alignment
        ),
    ))
}

/// The model loader's rules (hyperparameters, vocabulary, tensor set).
fn check_loader(index: &GgufIndex, tensors: &[TensorInfo]) -> Vec<LlamaIssue> {
    let mut out = Vec::new();
    let meta = |k: &str| index.entry(k);
    let subject = |k: &str| format!("metadata '{k}'");

    // Architecture.
    let arch = match meta("general.architecture") {
        None => {
            out.push(LlamaIssue::refuse(
                "unknown-architecture",
                subject("general.architecture"),
                None,
                "missing; llama.cpp refuses the model (\"unknown model architecture: ''\")".into(),
            ));
            None
        }
        Some(e) => match e.value.as_str() {
            Some(a) if ARCHITECTURES.contains(&a) => Some(a.to_string()),
            Some(a) => {
                out.push(LlamaIssue::refuse(
                    "unknown-architecture",
                    subject(&e.key),
                    Some(e.value_offset),
                    format!(
                        "'{a}' is not an architecture {LLAMA_CPP_BUILD} knows; it refuses the \
                         model (\"unknown model architecture\")"
                    ),
                ));
                None
            }
            None => {
                out.push(wrong_type(e, "STRING"));
                None
            }
        },
    };

    // Hyperparameters read as UINT32 (a wrong type is refused, not converted).
    let mut n_layer = None;
    if let Some(arch) = &arch {
        for (suffix, required) in [
            ("context_length", true),
            ("embedding_length", true),
            ("block_count", true),
        ] {
            let key = format!("{arch}.{suffix}");
            match meta(&key) {
                None if required => out.push(LlamaIssue::refuse(
                    "missing-key",
                    subject(&key),
                    None,
                    format!(
                        "missing; llama.cpp refuses the model (\"key not found in model: {key}\")"
                    ),
                )),
                None => {}
                Some(e) => match e.value {
                    MetaValue::U32(v) => {
                        if suffix == "block_count" {
                            if v == 0 || u64::from(v) > MAX_LAYERS {
                                out.push(LlamaIssue::refuse(
                                    "block-count",
                                    subject(&key),
                                    Some(e.value_offset),
                                    format!(
                                        "{v} layers; llama.cpp requires 1 to {MAX_LAYERS} and \
                                         aborts on an assertion otherwise"
                                    ),
                                ));
                            } else {
                                n_layer = Some(v);
                            }
                        }
                    }
                    _ => out.push(wrong_type(e, "UINT32")),
                },
            }
        }
        if let Some(n) = n_layer {
            check_blocks(tensors, n, &key_of(arch, "block_count"), &mut out);
            for suffix in PER_LAYER_KEYS {
                if let Some(e) = meta(&key_of(arch, suffix)) {
                    check_per_layer(e, n, &mut out);
                }
            }
        }
    }

    check_vocab(index, tensors, arch.as_deref(), &mut out);
    out
}

fn key_of(arch: &str, suffix: &str) -> String {
    format!("{arch}.{suffix}")
}

fn wrong_type(e: &MetadataEntry, want: &str) -> LlamaIssue {
    let found = match &e.value {
        MetaValue::Array(a) => format!("ARRAY of {}", a.element_type()),
        v => v.value_type().name().to_string(),
    };
    LlamaIssue::refuse(
        "wrong-value-type",
        format!("metadata '{}'", e.key),
        Some(e.value_offset - 4),
        format!(
            "stored as {found}; llama.cpp requires {want} and refuses the model (\"key {} has \
             wrong type\")",
            e.key
        ),
    )
}

/// `blk.N.*` tensors against `block_count`: llama.cpp looks each layer's tensors up (a layer
/// without any is a missing tensor) and requires every tensor of the file to be used (a
/// layer at or beyond the count is "wrong number of tensors").
fn check_blocks(tensors: &[TensorInfo], n_layer: u32, key: &str, out: &mut Vec<LlamaIssue>) {
    let mut present = BTreeSet::new();
    let mut beyond: Option<&TensorInfo> = None;
    let mut n_beyond = 0usize;
    for t in tensors {
        let Some(n) = block_index(&t.name) else {
            continue;
        };
        present.insert(n);
        if n >= u64::from(n_layer) {
            n_beyond += 1;
            beyond.get_or_insert(t);
        }
    }
    if let Some(t) = beyond {
        out.push(LlamaIssue::refuse(
            "block-count-mismatch",
            format!("tensor '{}'", t.name),
            Some(t.info_offset),
            format!(
                "{n_beyond} tensor(s) belong to layers at or beyond {key} = {n_layer}; llama.cpp \
                 does not use them and refuses the model (\"wrong number of tensors\")"
            ),
        ));
    }
    if present.is_empty() {
        return;
    }
    let missing: Vec<u64> = (0..u64::from(n_layer))
        .filter(|n| !present.contains(n))
        .collect();
    if let Some(&first) = missing.first() {
        let list = if missing.len() > 8 {
            format!("{} layers, the first blk.{first}", missing.len())
        } else {
            missing
                .iter()
                .map(|n| format!("blk.{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push(LlamaIssue::refuse(
            "block-count-mismatch",
            format!("metadata '{key}'"),
            None,
            format!(
                "{key} = {n_layer} but no tensor of {list} is present; llama.cpp refuses the \
                 model (\"missing tensor 'blk.{first}.…'\")"
            ),
        ));
    }
}

/// `blk.N.…` → `N`.
pub fn block_index(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("blk.")?;
    let digits = rest.split('.').next()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn check_per_layer(e: &MetadataEntry, n_layer: u32, out: &mut Vec<LlamaIssue>) {
    let subject = format!("metadata '{}'", e.key);
    match &e.value {
        MetaValue::U32(_) => {}
        MetaValue::Array(a) => {
            let elem_ok = matches!(
                a.element_type(),
                ValueType::U32 | ValueType::I32 | ValueType::Bool
            );
            if !elem_ok {
                out.push(LlamaIssue::refuse(
                    "wrong-value-type",
                    subject.clone(),
                    Some(e.value_offset),
                    format!(
                        "an array of {}; llama.cpp requires UINT32 or INT32 elements and \
                         refuses the model (\"wrong array element type\")",
                        a.element_type()
                    ),
                ));
            }
            if a.len() != n_layer as usize {
                out.push(LlamaIssue::refuse(
                    "per-layer-array-length",
                    subject,
                    Some(e.value_offset),
                    format!(
                        "{} values for {n_layer} layers; llama.cpp refuses the model (\"key {} \
                         has wrong array length; expected {n_layer}, got {}\")",
                        a.len(),
                        e.key,
                        a.len()
                    ),
                ));
            }
        }
        _ => out.push(wrong_type(e, "UINT32 (or an array of one per layer)")),
    }
}

fn check_vocab(
    index: &GgufIndex,
    tensors: &[TensorInfo],
    arch: Option<&str>,
    out: &mut Vec<LlamaIssue>,
) {
    let subject = |k: &str| format!("metadata '{k}'");
    let model = index.entry("tokenizer.ggml.model");
    let tokenizer = match model {
        None => {
            if arch.is_some() {
                out.push(LlamaIssue::refuse(
                    "missing-key",
                    subject("tokenizer.ggml.model"),
                    None,
                    "missing; llama.cpp refuses the model (\"key not found in model: \
                     tokenizer.ggml.model\")"
                        .into(),
                ));
            }
            return;
        }
        Some(e) => match e.value.as_str() {
            Some(s) => s.to_string(),
            None => {
                out.push(wrong_type(e, "STRING"));
                return;
            }
        },
    };
    if tokenizer == "none" || tokenizer == "no_vocab" {
        return;
    }
    let Some(tokens_e) = index.entry("tokenizer.ggml.tokens") else {
        out.push(LlamaIssue::refuse(
            "missing-key",
            subject("tokenizer.ggml.tokens"),
            None,
            "missing; llama.cpp refuses the model (\"cannot find tokenizer vocab in model file\")"
                .into(),
        ));
        return;
    };
    let Some(tokens) = tokens_e.value.as_array().and_then(MetaArray::as_strings) else {
        out.push(wrong_type(tokens_e, "ARRAY of STRING"));
        return;
    };
    let n_vocab = tokens.len() as u64;

    for (key, want) in [
        (
            "tokenizer.ggml.scores",
            &[ValueType::F32, ValueType::I32][..],
        ),
        ("tokenizer.ggml.token_type", &[ValueType::I32][..]),
    ] {
        let Some(e) = index.entry(key) else { continue };
        match e.value.as_array() {
            Some(a) if want.contains(&a.element_type()) => {
                if (a.len() as u64) < n_vocab {
                    out.push(LlamaIssue::refuse(
                        "vocab-array-short",
                        subject(key),
                        Some(e.value_offset),
                        format!(
                            "{} entries for {n_vocab} tokens; llama.cpp refuses the model \
                             (\"Index out of array bounds\")",
                            a.len()
                        ),
                    ));
                }
            }
            _ => out.push(LlamaIssue::refuse(
                "wrong-value-type",
                subject(key),
                Some(e.value_offset - 4),
                format!(
                    "not an array of {}; llama.cpp refuses the model (\"invalid gguf type for \
                     {key}\")",
                    want.iter()
                        .map(|t| t.name())
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            )),
        }
    }

    if let Some((i, len)) = tokens
        .iter()
        .enumerate()
        .map(|(i, b)| (i, b.len()))
        .find(|&(_, l)| l > MAX_SANE_TOKEN_BYTES)
    {
        out.push(LlamaIssue::mishandle(
            "token-too-long",
            subject("tokenizer.ggml.tokens"),
            Some(tokens_e.value_offset),
            format!(
                "token {i} is {len} bytes (real vocabularies stay under {MAX_SANE_TOKEN_BYTES}); \
                 oversized token texts are the CVE-2025-49847 class (a token's length taken as a \
                 signed 32-bit int in llama.cpp's token_to_piece)"
            ),
        ));
    }

    for key in SPECIAL_TOKEN_KEYS {
        let Some(e) = index.entry(key) else { continue };
        match e.value {
            MetaValue::U32(id) => {
                if u64::from(id) >= n_vocab {
                    out.push(LlamaIssue::mishandle(
                        "special-token-out-of-range",
                        subject(key),
                        Some(e.value_offset),
                        format!(
                            "token id {id} is outside the vocabulary of {n_vocab} tokens; \
                             llama.cpp ignores it (\"bad special token\") and uses its default"
                        ),
                    ));
                }
            }
            _ => out.push(wrong_type(e, "UINT32")),
        }
    }

    let n_embd = arch.and_then(|a| index.get_u32(&key_of(a, "embedding_length")));
    for name in ["token_embd.weight", "output.weight"] {
        let Some(t) = tensors.iter().find(|t| t.name == name) else {
            continue;
        };
        let rows = t.dims.get(1).copied().unwrap_or(1);
        let cols = t.dims.first().copied().unwrap_or(1);
        let n_embd_ok = n_embd.is_none_or(|n| u64::from(n) == cols);
        if rows != n_vocab || !n_embd_ok || t.dims.len() > 2 {
            let want = match n_embd {
                Some(n) => format!("[{n}, {n_vocab}]"),
                None => format!("[n_embd, {n_vocab}]"),
            };
            out.push(LlamaIssue::refuse(
                "vocab-embedding-mismatch",
                format!("tensor '{name}'"),
                Some(t.info_offset),
                format!(
                    "shape {:?} where the vocabulary ({n_vocab} tokens) and embedding_length \
                     make llama.cpp expect {want}; it refuses the model (\"has wrong shape\")",
                    t.dims
                ),
            ));
        }
    }
}

/// [`check_model`] of the model at `path` (any file of a split model).
pub fn check_path(path: impl AsRef<std::path::Path>) -> Result<Vec<LlamaIssue>, crate::GgufError> {
    Ok(check_model(&GgufModel::open(path)?))
}

/// One sentence for a warning line: `llama.cpp … will refuse this file: <first refusal>
/// (and N more)`, or for mishandlings only `… will load it but: …`; `None` when there is
/// nothing to say.
pub fn summary(issues: &[LlamaIssue]) -> Option<String> {
    let refusals: Vec<&LlamaIssue> = issues.iter().filter(|i| i.refuses).collect();
    let (lead, list): (&str, Vec<&LlamaIssue>) = if refusals.is_empty() {
        ("will load it but", issues.iter().collect())
    } else {
        ("will refuse this file", refusals)
    };
    let first = list.first()?;
    let more = match list.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    Some(format!(
        "{LLAMA_CPP_BUILD} {lead}: {}{more}",
        first.one_line()
    ))
}
