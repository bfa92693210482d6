/// Vector<T> loads and stores at an array offset without a bounds check, for loops that check
/// their whole range once: the checked Vector(array, index) and CopyTo cost four to six
/// instructions each, more than the arithmetic they feed in the LIF step loop.
module internal SnnFunc.Kernels.VectorAt

open System.Numerics
open System.Runtime.InteropServices

/// The Vector<T>.Count elements of a from index i (unchecked: 0 <= i, i + Count <= a.Length are
/// the caller's).
let inline load (a: ^T[]) (i: int) : Vector< ^T > =
    Vector.LoadUnsafe(&MemoryMarshal.GetArrayDataReference a, unativeint i)

/// v into the Vector<T>.Count elements of a from index i (unchecked, as load).
let inline store (v: Vector< ^T >) (a: ^T[]) (i: int) =
    Vector.StoreUnsafe(v, &MemoryMarshal.GetArrayDataReference a, unativeint i)
