import { buildProgram } from './program';

buildProgram()
  .parseAsync(process.argv)
  .catch((err: Error) => {
    console.error(`dsu: ${err.message}`);
    process.exit(1);
  });
