//! A VMCS as data: the fields Rampart launches a vCPU with, computed by pure code
//! (`vmx::setup`), checked against SDM Vol. 3C chapter 27 on the host (`vmx::entry_checks`)
//! and written with one routine (`setup::write_image`).
#![forbid(unsafe_code)]

/// Most fields one image holds (Rampart writes about 80).
pub const MAX_FIELDS: usize = 112;

/// Field encodings and values, each field once.
#[derive(Clone, Debug, Default)]
pub struct VmcsImage(heapless::Vec<(u32, u64), MAX_FIELDS>);

impl VmcsImage {
    pub const fn new() -> Self {
        Self(heapless::Vec::new())
    }

    /// Sets `field` to `value` (replacing an earlier value). Panics past [`MAX_FIELDS`]: the
    /// set of fields is fixed by the code, so that is a bug found by the first test.
    pub fn set(&mut self, field: u32, value: u64) {
        match self.0.iter_mut().find(|(f, _)| *f == field) {
            Some(slot) => slot.1 = value,
            None => self
                .0
                .push((field, value))
                .expect("more than MAX_FIELDS VMCS fields"),
        }
    }

    /// The value of `field` if the image sets it (the VM-entry checker's reads).
    #[cfg(any(test, feature = "gdb"))]
    pub fn get(&self, field: u32) -> Option<u64> {
        let found = self.0.iter().find(|(f, _)| *f == field);
        found.map(|&(_, value)| value)
    }

    /// The value of `field`, 0 where the image leaves it unset (VMCLEAR's initial value for
    /// the fields Rampart never writes, SDM Vol. 3C 25.11.3 leaves them undefined but every
    /// CPU here reads 0).
    #[cfg(any(test, feature = "gdb"))]
    pub fn value(&self, field: u32) -> u64 {
        self.get(field).unwrap_or(0)
    }

    pub fn fields(&self) -> &[(u32, u64)] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_set_once_and_replaced() {
        let mut image = VmcsImage::new();
        image.set(0x4002, 1);
        image.set(0x681e, 2);
        image.set(0x4002, 3);
        assert_eq!(image.fields(), [(0x4002, 3), (0x681e, 2)]);
        assert_eq!(image.get(0x681e), Some(2));
        assert_eq!(image.get(0x6820), None);
        assert_eq!(image.value(0x6820), 0);
    }
}
