//! Formatting without a heap: a fixed buffer that implements `core::fmt::Write`.

use core::fmt;

/// Collects formatted text in `N` bytes; what does not fit is dropped and `overflowed` is set.
pub struct FixedBuf<const N: usize> {
    bytes: [u8; N],
    len: usize,
    pub overflowed: bool,
}

impl<const N: usize> FixedBuf<N> {
    pub const fn new() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
            overflowed: false,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.overflowed = false;
    }
}

impl<const N: usize> Default for FixedBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for FixedBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let take = s.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            self.overflowed = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn keeps_what_fits() {
        let mut buf = FixedBuf::<8>::new();
        write!(buf, "ab{}", 12).unwrap();
        assert_eq!(buf.as_bytes(), b"ab12");
        write!(buf, "345678").unwrap();
        assert_eq!(buf.as_bytes(), b"ab123456");
        assert!(buf.overflowed);
    }
}
