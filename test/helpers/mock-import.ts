// tap's t.mockImport (@tapjs/mock 4.4, tap 21.8, the latest) never resolves on
// Node 22 (seen on 22.23: any module, a one-line test included), so a test file
// using it times out there. It works on Node 20 and 24. The tests that spy
// through it are skipped on Node 22 only, saying why.
export const MOCK_IMPORT_HANGS: string | false = process.versions.node.startsWith('22.')
  ? 'tap\'s t.mockImport hangs on Node 22 (test/helpers/mock-import.ts)'
  : false
