module SnnFunc.Tests.TestUtil
