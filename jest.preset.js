// Shared Jest setup: TypeScript through ts-jest, and `@dsu/<lib>` imports mapped to the lib's
// sources so unit tests never need a prior build.
const path = require('node:path');

module.exports = (projectDir) => ({
  displayName: path.basename(projectDir),
  rootDir: projectDir,
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: path.join(projectDir, 'tsconfig.spec.json') }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
  moduleNameMapper: {
    '^@dsu/([^/]+)$': path.join(__dirname, 'libs/$1/src/index.ts'),
  },
  testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'],
  reporters: ['default', [path.join(__dirname, 'tools/jest-results-reporter.js'), { project: path.basename(projectDir) }]],
});
