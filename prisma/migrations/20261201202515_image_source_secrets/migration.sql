-- Image URLs keep origin and path only: user info, query and upload tokens are sealed apart (issue 13).
ALTER TABLE "Image" ADD COLUMN "uploadUrl" TEXT;

CREATE TABLE "ImageSourceSecret" (
    "imageId" TEXT NOT NULL,
    "values" JSONB NOT NULL,

    CONSTRAINT "ImageSourceSecret_pkey" PRIMARY KEY ("imageId")
);

ALTER TABLE "ImageSourceSecret" ADD CONSTRAINT "ImageSourceSecret_imageId_fkey" FOREIGN KEY ("imageId") REFERENCES "Image"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Images whose download is over no longer need the credentials their URL carried: drop them from
-- the rows (a download still running keeps what its workflow was started with).
UPDATE "Image"
   SET "sourceUrl" = regexp_replace(split_part(split_part("sourceUrl", '#', 1), '?', 1), '^(https?://)[^/@]*@', '\1')
 WHERE "sourceUrl" IS NOT NULL AND "status" NOT IN ('PENDING', 'DOWNLOADING');
UPDATE "Image"
   SET "checksumFileUrl" = regexp_replace(split_part(split_part("checksumFileUrl", '#', 1), '?', 1), '^(https?://)[^/@]*@', '\1')
 WHERE "checksumFileUrl" IS NOT NULL AND "status" NOT IN ('PENDING', 'DOWNLOADING');
