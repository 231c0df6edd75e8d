#ifndef CALIBCTL_CHDF5_SHIM_H
#define CALIBCTL_CHDF5_SHIM_H
#if !__has_include(<hdf5.h>)
#error "HDF5 development files not found: install them with 'apt-get install libhdf5-dev pkg-config' (or run scripts/bootstrap.sh)"
#else
#include <hdf5.h>

/* HDF5's H5T_*, H5F_ACC_*, H5P_* class ids are runtime macros (H5OPEN + global); Swift cannot import them. */
static inline hid_t calib_h5t_native_float(void)  { return H5T_NATIVE_FLOAT; }
static inline hid_t calib_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t calib_h5t_native_int8(void)   { return H5T_NATIVE_INT8; }
static inline hid_t calib_h5t_native_int16(void)  { return H5T_NATIVE_INT16; }
static inline hid_t calib_h5t_native_int32(void)  { return H5T_NATIVE_INT32; }
static inline hid_t calib_h5t_native_int64(void)  { return H5T_NATIVE_INT64; }
static inline hid_t calib_h5t_native_uint8(void)  { return H5T_NATIVE_UINT8; }
static inline hid_t calib_h5t_native_uint16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t calib_h5t_native_uint32(void) { return H5T_NATIVE_UINT32; }
static inline hid_t calib_h5t_native_uint64(void) { return H5T_NATIVE_UINT64; }
/* Little-endian file types: payloads are always written little-endian (docs/formats.md). */
static inline hid_t calib_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t calib_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }
static inline hid_t calib_h5t_std_i8le(void)  { return H5T_STD_I8LE; }
static inline hid_t calib_h5t_std_i16le(void) { return H5T_STD_I16LE; }
static inline hid_t calib_h5t_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t calib_h5t_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t calib_h5t_std_u8le(void)  { return H5T_STD_U8LE; }
static inline hid_t calib_h5t_std_u16le(void) { return H5T_STD_U16LE; }
static inline hid_t calib_h5t_std_u32le(void) { return H5T_STD_U32LE; }
static inline hid_t calib_h5t_std_u64le(void) { return H5T_STD_U64LE; }
static inline hid_t calib_h5t_c_s1(void) { return H5T_C_S1; }
static inline size_t calib_h5t_variable(void) { return H5T_VARIABLE; }
static inline unsigned calib_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned calib_h5f_acc_rdwr(void)   { return H5F_ACC_RDWR; }
static inline unsigned calib_h5f_acc_trunc(void)  { return H5F_ACC_TRUNC; }
static inline unsigned calib_h5f_acc_excl(void)   { return H5F_ACC_EXCL; }
static inline hid_t calib_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t calib_h5p_file_access(void)    { return H5P_FILE_ACCESS; }
static inline hid_t calib_h5p_dataset_access(void) { return H5P_DATASET_ACCESS; }
static inline hid_t calib_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t calib_h5s_all(void) { return H5S_ALL; }
static inline hid_t calib_h5e_default(void) { return H5E_DEFAULT; }
/* HDF5's automatic error printing is per thread in a thread-safe build: silence it once per thread. */
static _Thread_local int calib_h5_thread_quiet = 0;
static inline void calib_h5_quiet_this_thread(void) {
    if (!calib_h5_thread_quiet) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); calib_h5_thread_quiet = 1; }
}
#endif /* has_include */
#endif
