/// Optional P/Invoke bindings to the system OpenBLAS (libopenblas.so.0), used only as a speed reference.
module SnnFunc.Bench.OpenBlas

open System
open System.Runtime.InteropServices

[<Literal>]
let private Lib = "libopenblas.so.0"

[<Literal>]
let RowMajor = 101

[<Literal>]
let NoTrans = 111

[<Literal>]
let Trans = 112

[<DllImport(Lib, CallingConvention = CallingConvention.Cdecl)>]
extern void cblas_sgemm(
    int order,
    int transA,
    int transB,
    int m,
    int n,
    int k,
    float32 alpha,
    float32[] a,
    int lda,
    float32[] b,
    int ldb,
    float32 beta,
    float32[] c,
    int ldc
)

[<DllImport(Lib, CallingConvention = CallingConvention.Cdecl)>]
extern void cblas_dgemm(
    int order,
    int transA,
    int transB,
    int m,
    int n,
    int k,
    double alpha,
    double[] a,
    int lda,
    double[] b,
    int ldb,
    double beta,
    double[] c,
    int ldc
)

[<DllImport(Lib, CallingConvention = CallingConvention.Cdecl)>]
extern void openblas_set_num_threads(int n)

[<DllImport(Lib, CallingConvention = CallingConvention.Cdecl)>]
extern nativeint openblas_get_corename()

[<DllImport(Lib, CallingConvention = CallingConvention.Cdecl)>]
extern nativeint openblas_get_config()

/// True when libopenblas.so.0 can be loaded in this process.
let available =
    lazy
        (match NativeLibrary.TryLoad Lib with
         | true, _ -> true
         | _ -> false)

/// OpenBLAS's name for the core type its kernels were chosen for (e.g. "Haswell", "SkylakeX").
let coreName () =
    match Marshal.PtrToStringAnsi(openblas_get_corename ()) with
    | null -> "?"
    | s -> s.Trim()

/// The build configuration string of the loaded OpenBLAS.
let config () =
    match Marshal.PtrToStringAnsi(openblas_get_config ()) with
    | null -> "?"
    | s -> s.Trim()
