//! The etcflip generation format, shared by the generator (which writes it) and the applier
//! (which owns it and reads it): the manifest and its rules ([`manifest`]), the strings it
//! borrows from a mapped file ([`borrowed`]), the tmpfiles.d encoding ([`tmpfiles`]), the
//! invalid-input error ([`errors`]), sha256 as recorded ([`hash`]), the manifest's JSON layout
//! ([`lines`]), file modes as chmod writes them ([`mode`]), capabilities as `cap_from_text`
//! writes them ([`caps`]) and the target placeholder of the wrapper binary ([`wrapper`]). Nothing here touches a
//! root: no file-system access beyond reading a generation's manifest.

pub mod borrowed;
pub mod caps;
pub mod errors;
pub mod hash;
pub mod lines;
pub mod manifest;
pub mod mode;
pub mod tmpfiles;
pub mod users;
pub mod wrapper;
pub mod wrappers;
