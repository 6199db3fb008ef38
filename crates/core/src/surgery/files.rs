//! Arrays from files nobody should trust: numpy `.npy` and `.safetensors`. Every size is
//! checked against the file before anything is allocated from it; errors name the file and
//! what is wrong.

use std::path::Path;

use hotpatch_gguf::GgmlType;

use super::SurgeryError;

/// The largest array file read (its values are held in memory as f32).
pub const MAX_ARRAY_FILE: u64 = 4 << 30;

/// An array read from a file: f32 values in C order, its numpy shape, and the type it was
/// stored as (F32, F16, BF16; F64 reads as F32).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Values, C order (the last dimension contiguous, as ggml's `ne[0]`).
    pub values: Vec<f32>,
    /// numpy shape (outermost first).
    pub shape: Vec<u64>,
    /// The stored element type.
    pub ty: GgmlType,
}

impl Array {
    /// The dims in ggml order (numpy's shape reversed).
    pub fn dims(&self) -> Vec<u64> {
        let mut d = self.shape.clone();
        d.reverse();
        if d.is_empty() {
            d.push(1);
        }
        d
    }
}

fn bad(path: &Path, m: impl Into<String>) -> SurgeryError {
    SurgeryError::invalid(path.display().to_string(), m)
}

fn read(path: &Path) -> Result<Vec<u8>, SurgeryError> {
    let len = std::fs::metadata(path)
        .map_err(|e| bad(path, e.to_string()))?
        .len();
    if len > MAX_ARRAY_FILE {
        return Err(bad(
            path,
            format!("{len} bytes is more than the {MAX_ARRAY_FILE} read"),
        ));
    }
    std::fs::read(path).map_err(|e| bad(path, e.to_string()))
}

fn element_count(path: &Path, shape: &[u64]) -> Result<usize, SurgeryError> {
    shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| bad(path, format!("shape {shape:?} is too large")))
}

fn decode(
    path: &Path,
    dtype: &str,
    bytes: &[u8],
    n: usize,
) -> Result<(Vec<f32>, GgmlType), SurgeryError> {
    let (size, ty) = match dtype {
        "f4" | "F32" => (4, GgmlType::F32),
        "f8" | "F64" => (8, GgmlType::F32),
        "f2" | "F16" => (2, GgmlType::F16),
        "BF16" => (2, GgmlType::BF16),
        d => {
            return Err(bad(
                path,
                format!("element type '{d}' is not a float type (f32, f16, bf16, f64)"),
            ))
        }
    };
    let need = n
        .checked_mul(size)
        .ok_or_else(|| bad(path, "array too large"))?;
    if bytes.len() != need {
        return Err(bad(
            path,
            format!(
                "holds {} data bytes where its shape needs {need}",
                bytes.len()
            ),
        ));
    }
    let v = match (size, ty) {
        (4, _) => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        (8, _) => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        (_, GgmlType::F16) => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
    };
    Ok((v, ty))
}

/// Reads a `.npy` file (format versions 1-3; little-endian float32/float16/float64; C order).
pub fn read_npy(path: &Path) -> Result<Array, SurgeryError> {
    let b = read(path)?;
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(bad(path, "not a .npy file (no \\x93NUMPY magic)"));
    }
    let (hlen, start): (usize, usize) = match b[6] {
        1 => (usize::from(u16::from_le_bytes([b[8], b[9]])), 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => {
            return Err(bad(
                path,
                format!(".npy format version {v} is not supported"),
            ))
        }
    };
    let header = b
        .get(start..start.saturating_add(hlen))
        .ok_or_else(|| bad(path, "header runs past the end of the file"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad(path, "header is not text"))?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))?;
        let rest = header[at + key.len() + 2..]
            .trim_start()
            .strip_prefix(':')?;
        Some(rest.trim_start())
    };
    let descr = field("descr")
        .and_then(|r| r.strip_prefix('\''))
        .and_then(|r| r.split('\'').next())
        .ok_or_else(|| bad(path, "header has no 'descr'"))?;
    let (endian, kind) = descr.split_at(1);
    if !matches!(endian, "<" | "|" | "=") {
        return Err(bad(path, format!("'{descr}' is not little-endian")));
    }
    if field("fortran_order").is_some_and(|r| r.starts_with("True")) {
        return Err(bad(
            path,
            "Fortran-ordered arrays are not supported (save it C-ordered)",
        ));
    }
    let shape_text = field("shape")
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.split(')').next())
        .ok_or_else(|| bad(path, "header has no 'shape'"))?;
    let shape: Vec<u64> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u64>()
                .map_err(|_| bad(path, format!("shape entry '{s}' is not a number")))
        })
        .collect::<Result<_, _>>()?;
    if shape.len() > 4 {
        return Err(bad(
            path,
            format!("{} dimensions (GGUF tensors have at most 4)", shape.len()),
        ));
    }
    let n = element_count(path, &shape)?;
    let (values, ty) = decode(path, kind, &b[start + hlen..], n)?;
    Ok(Array { values, shape, ty })
}

/// Reads tensor `name` of a `.safetensors` file (F32, F16, BF16, F64).
pub fn read_safetensors(path: &Path, name: &str) -> Result<Array, SurgeryError> {
    let b = read(path)?;
    let n = b
        .get(..8)
        .map(|h| u64::from_le_bytes(h.try_into().unwrap_or([0; 8])))
        .ok_or_else(|| bad(path, "too short for a .safetensors header"))?;
    if n > 100 << 20 || 8 + n > b.len() as u64 {
        return Err(bad(
            path,
            format!("header length {n} does not fit the file"),
        ));
    }
    let header: serde_json::Value = serde_json::from_slice(&b[8..8 + n as usize])
        .map_err(|e| bad(path, format!("header is not JSON: {e}")))?;
    let Some(t) = header.get(name) else {
        let names: Vec<&str> = header
            .as_object()
            .map(|o| {
                o.keys()
                    .filter(|k| *k != "__metadata__")
                    .map(String::as_str)
                    .take(8)
                    .collect()
            })
            .unwrap_or_default();
        return Err(bad(
            path,
            format!("has no tensor '{name}' (it has {})", names.join(", ")),
        ));
    };
    let dtype = t["dtype"]
        .as_str()
        .ok_or_else(|| bad(path, format!("'{name}' has no dtype")))?;
    let shape: Vec<u64> = t["shape"]
        .as_array()
        .ok_or_else(|| bad(path, format!("'{name}' has no shape")))?
        .iter()
        .map(|d| {
            d.as_u64()
                .ok_or_else(|| bad(path, format!("'{name}': bad shape entry {d}")))
        })
        .collect::<Result<_, _>>()?;
    if shape.len() > 4 {
        return Err(bad(
            path,
            format!("'{name}' has {} dimensions (at most 4)", shape.len()),
        ));
    }
    let offs = t["data_offsets"]
        .as_array()
        .filter(|o| o.len() == 2)
        .and_then(|o| Some((o[0].as_u64()?, o[1].as_u64()?)))
        .ok_or_else(|| bad(path, format!("'{name}' has no data_offsets")))?;
    let data = &b[8 + n as usize..];
    let bytes = usize::try_from(offs.0)
        .ok()
        .zip(usize::try_from(offs.1).ok())
        .filter(|(s, e)| s <= e)
        .and_then(|(s, e)| data.get(s..e))
        .ok_or_else(|| {
            bad(
                path,
                format!("'{name}': data_offsets {offs:?} are outside the data"),
            )
        })?;
    let count = element_count(path, &shape)?;
    let (values, ty) = decode(path, dtype, bytes, count)?;
    Ok(Array { values, shape, ty })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn npy_reads_and_refuses_what_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let data: Vec<u8> = [1.0f32, -2.0, 3.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(&p, npy("<f4", "(3,)", &data)).unwrap();
        let a = read_npy(&p).unwrap();
        assert_eq!(
            (a.values, a.shape, a.ty),
            (vec![1.0, -2.0, 3.5], vec![3], GgmlType::F32)
        );
        std::fs::write(&p, npy("<f4", "(4,)", &data)).unwrap();
        assert!(read_npy(&p).unwrap_err().to_string().contains("needs 16"));
        std::fs::write(&p, npy(">f4", "(3,)", &data)).unwrap();
        assert!(read_npy(&p)
            .unwrap_err()
            .to_string()
            .contains("little-endian"));
        std::fs::write(&p, npy("<i4", "(3,)", &data)).unwrap();
        assert!(read_npy(&p)
            .unwrap_err()
            .to_string()
            .contains("not a float type"));
        std::fs::write(&p, npy("<f4", "(4294967296, 4294967296)", &data)).unwrap();
        assert!(read_npy(&p).unwrap_err().to_string().contains("too large"));
        std::fs::write(&p, b"\x93NUMPY\x01\x00\xff\xff").unwrap();
        assert!(read_npy(&p)
            .unwrap_err()
            .to_string()
            .contains("past the end"));
    }

    #[test]
    fn safetensors_offsets_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.safetensors");
        let write = |hdr: &str, data: &[u8]| {
            let mut b = (hdr.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(hdr.as_bytes());
            b.extend_from_slice(data);
            std::fs::write(&p, b).unwrap();
        };
        let data: Vec<u8> = [0.5f32, 1.5].iter().flat_map(|v| v.to_le_bytes()).collect();
        write(
            r#"{"w":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}"#,
            &data,
        );
        let a = read_safetensors(&p, "w").unwrap();
        assert_eq!((a.dims(), a.values), (vec![2, 1], vec![0.5, 1.5]));
        assert!(read_safetensors(&p, "x")
            .unwrap_err()
            .to_string()
            .contains("it has w"));
        write(
            r#"{"w":{"dtype":"F32","shape":[1,2],"data_offsets":[0,80]}}"#,
            &data,
        );
        assert!(read_safetensors(&p, "w")
            .unwrap_err()
            .to_string()
            .contains("outside the data"));
        write(
            r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
            &data,
        );
        assert!(read_safetensors(&p, "w")
            .unwrap_err()
            .to_string()
            .contains("needs 12"));
    }
}
