//! Storages for tests: the local filesystem behind the bundle's storage seam with one or two operations
//! changed (a disk that fills up, a removal cut short, reads counted). The macro writes the operations
//! that are handed on unchanged.

/// Implements the listed methods of `stowage_bundle::Storage` by handing each to the storage at the given
/// field path of `self`, for a storage that changes only some operations.
///
/// Inside `impl Storage for CutShort { ... }`, `storage_pass_through!((inner) create_dir_all, open_read);`
/// writes those two methods as `self.inner.create_dir_all(path)` and `self.inner.open_read(path)`; the
/// methods a test changes are written beside it by hand.
///
/// The field path is in parentheses (`(inner)`, `(0.inner)`). Only the listed methods are written, so that
/// the trait's provided methods (`read_limited`, `open_read_at`, ...) keep going through the ones a test
/// changes, as they would on a real storage.
#[macro_export]
macro_rules! storage_pass_through {
    ($field:tt $($method:ident),+ $(,)?) => {
        $( $crate::storage_pass_through!(@method $field $method); )+
    };
    (@method ($($f:tt)+) create_dir_all) => {
        fn create_dir_all(&self, path: &::std::path::Path) -> ::std::io::Result<()> {
            self.$($f)+.create_dir_all(path)
        }
    };
    (@method ($($f:tt)+) create) => {
        fn create(
            &self,
            path: &::std::path::Path,
        ) -> ::std::io::Result<::std::boxed::Box<dyn ::stowage_bundle::StorageFile>> {
            self.$($f)+.create(path)
        }
    };
    (@method ($($f:tt)+) open_append) => {
        fn open_append(
            &self,
            path: &::std::path::Path,
        ) -> ::std::io::Result<::std::boxed::Box<dyn ::stowage_bundle::StorageFile>> {
            self.$($f)+.open_append(path)
        }
    };
    (@method ($($f:tt)+) open_read) => {
        fn open_read(
            &self,
            path: &::std::path::Path,
        ) -> ::std::io::Result<::std::boxed::Box<dyn ::std::io::Read + Send>> {
            self.$($f)+.open_read(path)
        }
    };
    (@method ($($f:tt)+) len) => {
        fn len(&self, path: &::std::path::Path) -> ::std::io::Result<u64> {
            self.$($f)+.len(path)
        }
    };
    (@method ($($f:tt)+) exists) => {
        fn exists(&self, path: &::std::path::Path) -> ::std::io::Result<bool> {
            self.$($f)+.exists(path)
        }
    };
    (@method ($($f:tt)+) rename) => {
        fn rename(&self, from: &::std::path::Path, to: &::std::path::Path) -> ::std::io::Result<()> {
            self.$($f)+.rename(from, to)
        }
    };
    (@method ($($f:tt)+) truncate) => {
        fn truncate(&self, path: &::std::path::Path, len: u64) -> ::std::io::Result<()> {
            self.$($f)+.truncate(path, len)
        }
    };
    (@method ($($f:tt)+) remove_file) => {
        fn remove_file(&self, path: &::std::path::Path) -> ::std::io::Result<()> {
            self.$($f)+.remove_file(path)
        }
    };
    (@method ($($f:tt)+) remove_dir_all) => {
        fn remove_dir_all(&self, path: &::std::path::Path) -> ::std::io::Result<()> {
            self.$($f)+.remove_dir_all(path)
        }
    };
    (@method ($($f:tt)+) list_dir) => {
        fn list_dir(&self, path: &::std::path::Path) -> ::std::io::Result<Vec<::stowage_bundle::DirEntry>> {
            self.$($f)+.list_dir(path)
        }
    };
    (@method ($($f:tt)+) sync_dir) => {
        fn sync_dir(&self, path: &::std::path::Path) -> ::std::io::Result<()> {
            self.$($f)+.sync_dir(path)
        }
    };
    (@method ($($f:tt)+) try_lock) => {
        fn try_lock(
            &self,
            path: &::std::path::Path,
        ) -> ::std::io::Result<Option<::std::boxed::Box<dyn ::stowage_bundle::StorageLock>>> {
            self.$($f)+.try_lock(path)
        }
    };
    (@method ($($f:tt)+) available_space) => {
        fn available_space(&self, path: &::std::path::Path) -> ::std::io::Result<Option<u64>> {
            self.$($f)+.available_space(path)
        }
    };
}
