//! Fuzzes the GGUF parser: any bytes must give an index or a typed error, never a panic, an
//! out-of-bounds access or an allocation sized by the input. Accepted files must keep every
//! tensor inside the input, and writing the header back must parse to the same index.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(idx) = hotpatch_gguf::parse(data) else {
        return;
    };
    for t in &idx.tensors {
        assert!(
            t.offset >= idx.data_offset && t.end() <= data.len() as u64,
            "tensor {} inside the input",
            t.name
        );
        assert_eq!(t.offset % idx.alignment, 0, "tensor {} aligned", t.name);
    }
    // Re-encode the header (same metadata and tensors) and parse it again.
    let meta: Vec<(String, hotpatch_gguf::MetaValue)> = idx
        .metadata
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect();
    let known: Vec<_> = idx
        .tensors
        .iter()
        .filter(|t| t.ty.known().is_some())
        .collect();
    let shapes: Vec<hotpatch_gguf::TensorShape<'_>> = known
        .iter()
        .map(|t| hotpatch_gguf::TensorShape {
            name: &t.name,
            ty: t.ty,
            dims: &t.dims,
            nbytes: t.nbytes,
        })
        .collect();
    if let Ok(lay) = hotpatch_gguf::layout(idx.version, &meta, &shapes) {
        if lay.file_size <= 1 << 24 {
            let mut f = lay.header.clone();
            f.resize(lay.file_size as usize, 0);
            let again = hotpatch_gguf::parse(&f).expect("a header we wrote parses");
            assert_eq!(again.metadata.len(), idx.metadata.len());
            assert_eq!(again.tensors.len(), known.len());
        }
    }
});
