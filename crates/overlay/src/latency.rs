//! Network latency models for the scale experiments: where nodes sit and how far apart they are.
//!
//! The Pastry paper's simulator placed nodes at random points on a plane (Euclidean distance) and
//! also used transit-stub topologies; the delay-stretch figures quoted in paper 002 ("average delay
//! penalty, relative to IP, is low (1.3 - 2.2)") span those models. We provide a plane, a sphere
//! (great circles, the Earth's surface at fibre speed) and a measured latency matrix.

use std::path::Path;

use rand::Rng;
use thiserror::Error;

/// Side of the square in [`LatencyModel::Plane`], in milliseconds of one-way latency.
pub const PLANE_SIDE_MS: f64 = 100.0;
/// One-way latency across half the sphere in [`LatencyModel::Sphere`]: 20,000 km at 200 km/ms.
pub const SPHERE_HALF_CIRCUMFERENCE_MS: f64 = 100.0;
/// The largest latency matrix accepted, in rows (a square matrix of f64 is rows^2 * 8 bytes).
pub const MATRIX_ROWS_MAX: usize = 10_000;

/// How latency between two nodes is computed.
#[derive(Clone, Debug)]
pub enum LatencyModel {
    /// Nodes uniform on a square of side [`PLANE_SIDE_MS`]; latency is the Euclidean distance.
    Plane,
    /// Nodes uniform on a sphere; latency is the great-circle distance, at most
    /// [`SPHERE_HALF_CIRCUMFERENCE_MS`].
    Sphere,
    /// Nodes assigned uniformly at random to the rows of a measured symmetric matrix (ms).
    Matrix(LatencyMatrix),
}

/// A square matrix of one-way latencies in milliseconds.
#[derive(Clone, Debug)]
pub struct LatencyMatrix {
    rows: usize,
    ms: Vec<f32>,
}

/// Why a latency matrix file was refused.
#[derive(Debug, Error)]
pub enum LatencyMatrixError {
    /// The file could not be read.
    #[error("cannot read latency matrix {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A value is not a non-negative number.
    #[error("latency matrix line {line}: {value:?} is not a non-negative number of milliseconds")]
    BadValue {
        /// 1-based line.
        line: usize,
        /// The text found.
        value: String,
    },
    /// The rows do not form a square.
    #[error("latency matrix must be square: line {line} has {found} values, expected {expected}")]
    NotSquare {
        /// 1-based line.
        line: usize,
        /// Values on that line.
        found: usize,
        /// Values expected (the row count).
        expected: usize,
    },
    /// Too large or empty.
    #[error("latency matrix has {rows} rows; it must have 1..={MATRIX_ROWS_MAX}")]
    BadSize {
        /// Rows found.
        rows: usize,
    },
}

impl LatencyMatrix {
    /// Parse whitespace-separated milliseconds, one row per line (blank lines and `#` comments
    /// skipped).
    pub fn parse(text: &str) -> Result<LatencyMatrix, LatencyMatrixError> {
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let rows = lines.len();
        if rows == 0 || rows > MATRIX_ROWS_MAX {
            return Err(LatencyMatrixError::BadSize { rows });
        }
        let mut ms = Vec::with_capacity(rows * rows);
        for (line, text) in lines {
            let before = ms.len();
            for value in text.split_whitespace() {
                let v: f32 = value
                    .parse()
                    .ok()
                    .filter(|v: &f32| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| LatencyMatrixError::BadValue {
                        line,
                        value: value.to_string(),
                    })?;
                ms.push(v);
            }
            let found = ms.len() - before;
            if found != rows {
                return Err(LatencyMatrixError::NotSquare {
                    line,
                    found,
                    expected: rows,
                });
            }
        }
        Ok(LatencyMatrix { rows, ms })
    }

    /// Read and parse a matrix file.
    pub fn load(path: &Path) -> Result<LatencyMatrix, LatencyMatrixError> {
        let text = std::fs::read_to_string(path).map_err(|source| LatencyMatrixError::Io {
            path: path.display().to_string(),
            source,
        })?;
        LatencyMatrix::parse(&text)
    }

    /// Rows (= columns).
    pub fn rows(&self) -> usize {
        self.rows
    }

    fn get(&self, a: usize, b: usize) -> f64 {
        f64::from(self.ms[a * self.rows + b])
    }
}

/// Where one node sits in a latency model: plane coordinates, a unit vector, or a matrix row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Position {
    x: f32,
    y: f32,
    z: f32,
}

impl Position {
    /// A point on the plane (also a matrix row when `y` is 0).
    pub fn planar(x: f32, y: f32) -> Position {
        Position { x, y, z: 0.0 }
    }

    /// The point's plane coordinates (meaningful under [`LatencyModel::Plane`]).
    pub fn plane_xy(&self) -> (f32, f32) {
        (self.x, self.y)
    }
}

impl LatencyModel {
    /// A random position for a new node.
    pub fn place(&self, rng: &mut impl Rng) -> Position {
        match self {
            LatencyModel::Plane => Position {
                x: rng.gen_range(0.0..PLANE_SIDE_MS) as f32,
                y: rng.gen_range(0.0..PLANE_SIDE_MS) as f32,
                z: 0.0,
            },
            LatencyModel::Sphere => {
                // Uniform on the sphere: uniform height and uniform angle (Archimedes).
                let z: f64 = rng.gen_range(-1.0..1.0);
                let angle: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
                let r = (1.0 - z * z).sqrt();
                Position {
                    x: (r * angle.cos()) as f32,
                    y: (r * angle.sin()) as f32,
                    z: z as f32,
                }
            }
            LatencyModel::Matrix(m) => Position {
                x: rng.gen_range(0..m.rows) as f32,
                y: 0.0,
                z: 0.0,
            },
        }
    }

    /// One-way latency between two positions, in milliseconds.
    pub fn latency_ms(&self, a: Position, b: Position) -> f64 {
        match self {
            LatencyModel::Plane => {
                let (dx, dy) = (f64::from(a.x - b.x), f64::from(a.y - b.y));
                (dx * dx + dy * dy).sqrt()
            }
            LatencyModel::Sphere => {
                let dot = f64::from(a.x * b.x + a.y * b.y + a.z * b.z).clamp(-1.0, 1.0);
                dot.acos() / std::f64::consts::PI * SPHERE_HALF_CIRCUMFERENCE_MS
            }
            LatencyModel::Matrix(m) => m.get(a.x as usize, b.x as usize),
        }
    }

    /// A short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            LatencyModel::Plane => "plane",
            LatencyModel::Sphere => "sphere",
            LatencyModel::Matrix(_) => "matrix",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn sphere_latency_is_bounded_by_half_the_circumference() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let model = LatencyModel::Sphere;
        let mut largest: f64 = 0.0;
        for _ in 0..1000 {
            let (a, b) = (model.place(&mut rng), model.place(&mut rng));
            let d = model.latency_ms(a, b);
            assert!((0.0..=SPHERE_HALF_CIRCUMFERENCE_MS + 1e-3).contains(&d));
            assert!((d - model.latency_ms(b, a)).abs() < 1e-9);
            largest = largest.max(d);
        }
        assert!(
            largest > 0.9 * SPHERE_HALF_CIRCUMFERENCE_MS,
            "antipodal pairs occur"
        );
    }

    #[test]
    fn plane_latency_is_euclidean() {
        let model = LatencyModel::Plane;
        let a = Position::planar(0.0, 0.0);
        let b = Position::planar(3.0, 4.0);
        assert!((model.latency_ms(a, b) - 5.0).abs() < 1e-9);
    }

    #[test]
    fn matrix_parsing_checks_shape_and_values() {
        let m = LatencyMatrix::parse("# ms\n0 10\n10 0\n").expect("a 2x2 matrix");
        assert_eq!(m.rows(), 2);
        let model = LatencyModel::Matrix(m);
        let a = Position::planar(0.0, 0.0);
        let b = Position::planar(1.0, 0.0);
        assert_eq!(model.latency_ms(a, b), 10.0);
        assert!(matches!(
            LatencyMatrix::parse("0 1\n1\n"),
            Err(LatencyMatrixError::NotSquare {
                line: 2,
                found: 1,
                expected: 2
            })
        ));
        assert!(matches!(
            LatencyMatrix::parse("0 x\n1 0\n"),
            Err(LatencyMatrixError::BadValue { line: 1, .. })
        ));
        assert!(matches!(
            LatencyMatrix::parse(""),
            Err(LatencyMatrixError::BadSize { rows: 0 })
        ));
    }
}
